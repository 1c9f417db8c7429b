'use strict';
// fork_echo.js - the child of bench/fork_rtt.js: sends every message back.
// Started by node's child_process.fork or by spawnd's POST /v1/fork (same
// channel: NODE_CHANNEL_FD, JSON serialization).
process.on('message', (m) => process.send(m));
process.on('disconnect', () => process.exit(0));
