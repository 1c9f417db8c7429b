// fork children for it_fork and it_jobs; the first argument picks the behaviour.
const mode = process.argv[2];
const special = 'line1\nline2 "q" \\ é 😀 \u2028 end';

if (mode === 'lifecycle') {
    // prints, lives a little, exits 0 by itself (the channel must not keep it alive)
    console.log('fork-out');
    process.channel.unref();
    setTimeout(() => process.exit(0), 300);
} else if (mode === 'unicode') {
    // sends a tricky string of its own, then answers with the code points it received
    process.send({ s: special });
    process.on('message', m => {
        process.send({ cps: [...m.s].map(c => c.codePointAt(0)), s: m.s, same: m.s === special });
    });
} else if (mode === 'disconnect') {
    // answers once, closes the channel, lives on until killed
    process.on('message', m => {
        process.send({ bye: m });
        process.disconnect();
        setInterval(() => {}, 1000);
    });
} else if (mode === 'exit') {
    // answers once, then exits 3 in the middle of the conversation
    process.on('message', m => {
        process.send({ last: m }, () => process.exit(3));
    });
} else if (mode === 'internal') {
    // a Node-internal message first: it must not reach the caller
    process.send({ cmd: 'NODE_X', secret: true });
    process.send({ ok: 1 });
    process.on('message', () => {});
} else if (mode === 'linger') {
    // says hello, then lives on whatever happens to its channel
    process.send({ hello: 1 });
    process.on('message', () => {});
    process.on('disconnect', () => console.log('disconnected'));
    setInterval(() => {}, 1000);
} else if (mode === 'flood') {
    // more messages than the retention keeps, nobody reading
    const n = Number(process.argv[3]);
    const pad = 'x'.repeat(100);
    for (let i = 0; i < n; i++) process.send({ i, pad });
    process.on('message', () => {});
} else {
    console.error('forkkit: unknown mode ' + mode);
    process.exit(2);
}
