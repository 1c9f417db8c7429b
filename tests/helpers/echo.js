// fork child for it_fork: sends every message straight back.
process.on('message', m => process.send(m));
