'use strict';
/*
 * fork_rtt.js - message round trips to a forked child that echoes them
 * (fork_echo.js); prints "MEDIAN_US P99_US N RATE": the median and p99 time
 * from sending a message to receiving its echo, how many were counted, and
 * round trips per second over the counted part.
 *
 *   node fork_rtt.js local N [W]         node's own child_process.fork + process.send
 *   node fork_rtt.js URL N [W]           spawnd: POST /v1/fork, then one
 *                                        POST /v1/jobs/{id}/messages per message;
 *                                        echoes read from one
 *                                        GET /v1/jobs/{id}/messages?follow=true
 *   node fork_rtt.js URL N [W] stream    the same, but every message is one line
 *                                        of a single streamed POST .../messages
 *                                        (Content-Type: application/x-ndjson)
 *   node fork_rtt.js tcp:PORT N [W]      no HTTP: one line per message over a plain
 *                                        TCP connection to a relay that runs
 *                                        fork_echo.js per connection (bench/run.sh
 *                                        uses socat): the bare three-process path
 *
 * W (default 1) messages are kept in flight: each echo sends the next one.
 * With W = 1 the figures are one-at-a-time latency. The first 10% of the round
 * trips are a warm-up and are not counted.
 */
const http = require('http');
const net = require('net');
const path = require('path');
const cp = require('child_process');

const args = process.argv.slice(2);
const stream = args[args.length - 1] === 'stream';
if (stream) args.pop();
const [target, nArg, wArg] = args;
const n = parseInt(nArg || '1000', 10);
const window = parseInt(wArg || '1', 10);
const warm = Math.max(1, Math.floor(n / 10));
const child = path.join(__dirname, 'fork_echo.js');

function fail(msg) {
  console.error(`fork_rtt: ${msg}`);
  process.exit(1);
}

const now = () => Number(process.hrtime.bigint()) / 1e3; // µs

/* Runs the exchange over a transport: send(i) sends message {i}; the
 * transport calls the returned function with each echoed message. */
function exchange(send, done) {
  const total = n + warm;
  const sentAt = new Array(total);
  const times = [];
  let next = 0;
  let got = 0;
  let tWarm = 0;
  const push = () => {
    sentAt[next] = now();
    send(next++);
  };
  const onEcho = (m) => {
    if (!m || typeof m.i !== 'number' || sentAt[m.i] === undefined) fail(`unexpected echo ${JSON.stringify(m)}`);
    const t = now();
    if (m.i >= warm) times.push(t - sentAt[m.i]);
    if (++got === warm) tWarm = t;
    if (got === total) {
      const sorted = times.sort((a, b) => a - b);
      const q = (p) => sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))];
      const rate = (total - warm) / ((t - tWarm) / 1e6);
      console.log(`${q(0.5).toFixed(1)} ${q(0.99).toFixed(1)} ${sorted.length} ${rate.toFixed(0)}`);
      done();
      return;
    }
    if (next < total) push();
  };
  return { start: () => { for (let k = 0; k < window && next < total; k++) push(); }, onEcho };
}

function runLocal() {
  const c = cp.fork(child, [], { stdio: 'ignore' });
  const ex = exchange((i) => c.send({ i }), () => c.disconnect());
  c.on('message', ex.onEcho);
  ex.start();
}

function runRelay(port) {
  const sock = net.connect(port, '127.0.0.1');
  sock.setNoDelay(true);
  let batch = null; /* as below: what one read of echoes makes us send, in one write */
  const ex = exchange((i) => {
    const l = `${JSON.stringify({ i })}\n`;
    if (batch !== null) batch += l;
    else sock.write(l);
  }, () => sock.destroy());
  let line = '';
  sock.setEncoding('utf8');
  sock.on('data', (d) => {
    line += d;
    batch = '';
    let nl;
    while ((nl = line.indexOf('\n')) >= 0) {
      ex.onEcho(JSON.parse(line.slice(0, nl)));
      line = line.slice(nl + 1);
    }
    const b = batch;
    batch = null;
    if (b && !sock.destroyed) sock.write(b);
  });
  sock.on('error', (e) => fail(`relay on port ${port}: ${e.message}`));
  sock.on('connect', () => ex.start());
}

function runSpawnd(base) {
  const u = new URL(base);
  const agent = new http.Agent({ keepAlive: true, maxSockets: window });
  const req = (method, p, body, cb) => {
    const data = body === undefined ? undefined : JSON.stringify(body);
    const r = http.request({ host: u.hostname, port: u.port, method, path: p, agent,
      headers: data === undefined ? {} : { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(data) } },
    (res) => {
      let s = '';
      res.setEncoding('utf8');
      res.on('data', (d) => { s += d; });
      res.on('end', () => cb(res.statusCode, s));
    });
    r.on('error', (e) => fail(`${method} ${p}: ${e.message}`));
    r.end(data);
  };
  req('POST', '/v1/fork', { module: child }, (st, s) => {
    if (st !== 201) fail(`POST /v1/fork answered ${st}: ${s}`);
    const id = JSON.parse(s).id;
    let upload = null;
    if (stream) {
      upload = http.request({ host: u.hostname, port: u.port, method: 'POST', path: `/v1/jobs/${id}/messages`,
        headers: { 'Content-Type': 'application/x-ndjson' } }, (res) => {
        let b = '';
        res.on('data', (d) => { b += d; });
        res.on('end', () => { if (res.statusCode !== 202) fail(`streamed POST messages answered ${res.statusCode}: ${b}`); });
      });
      upload.on('error', (e) => fail(`streamed POST messages: ${e.message}`));
      upload.on('socket', (sock) => sock.setNoDelay(true));
      upload.flushHeaders();
    }
    /* The lines sent while one read of echoes is handled go out as one
     * chunk, as any client streaming lines would write what it has. */
    let batch = null;
    const send = (i) => {
      if (upload) {
        const l = `${JSON.stringify({ i })}\n`;
        if (batch !== null) batch += l;
        else upload.write(l);
        return;
      }
      req('POST', `/v1/jobs/${id}/messages`, { i }, (st2, s2) => {
        if (st2 !== 202) fail(`POST messages answered ${st2}: ${s2}`);
      });
    };
    let follow = null;
    const ex = exchange(send, () => {
      follow.destroy();
      if (upload) upload.end();
      req('DELETE', `/v1/jobs/${id}`, undefined, () => { agent.destroy(); });
    });
    let line = '';
    follow = http.get({ host: u.hostname, port: u.port, path: `/v1/jobs/${id}/messages?follow=true` }, (res) => {
      if (res.statusCode !== 200) fail(`GET messages answered ${res.statusCode}`);
      res.setEncoding('utf8');
      res.on('data', (d) => {
        line += d;
        let nl;
        batch = '';
        while ((nl = line.indexOf('\n')) >= 0) {
          const ev = JSON.parse(line.slice(0, nl));
          line = line.slice(nl + 1);
          if (!ev.message) fail(`spawnd: got ${JSON.stringify(ev)}`);
          ex.onEcho(ev.message);
        }
        const b = batch;
        batch = null;
        if (b && upload) upload.write(b);
      });
    });
    follow.on('error', () => {});
    ex.start();
  });
}

if (!target || !(n > 0) || !(window > 0)) fail('usage: node fork_rtt.js local|URL [N] [W] [stream]');
if (target === 'local') runLocal();
else if (target.startsWith('tcp:')) runRelay(parseInt(target.slice(4), 10));
else runSpawnd(target);
