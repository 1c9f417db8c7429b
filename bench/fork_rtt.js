'use strict';
/*
 * fork_rtt.js - message round trips to a forked child that echoes them
 * (fork_echo.js), one at a time; prints "MEDIAN_US P99_US N".
 *
 *   node fork_rtt.js local N           node's own child_process.fork + process.send
 *   node fork_rtt.js URL N             spawnd: POST /v1/fork, then per message
 *                                      POST /v1/jobs/{id}/messages and wait for the
 *                                      echo on GET /v1/jobs/{id}/messages?follow=true
 *
 * The first 10% of the round trips are a warm-up and are not counted.
 */
const http = require('http');
const path = require('path');
const cp = require('child_process');

const target = process.argv[2];
const n = parseInt(process.argv[3] || '1000', 10);
const warm = Math.max(1, Math.floor(n / 10));
const child = path.join(__dirname, 'fork_echo.js');

function report(times) {
  const t = times.slice(warm).sort((a, b) => a - b);
  const q = (p) => t[Math.min(t.length - 1, Math.floor(p * t.length))];
  console.log(`${q(0.5).toFixed(1)} ${q(0.99).toFixed(1)} ${t.length}`);
}

function fail(msg) {
  console.error(`fork_rtt: ${msg}`);
  process.exit(1);
}

const now = () => Number(process.hrtime.bigint()) / 1e3; // µs

function runLocal() {
  const c = cp.fork(child, [], { stdio: 'ignore' });
  const times = [];
  let t0 = 0;
  let i = 0;
  c.on('message', (m) => {
    if (m.i !== i) fail(`local: got ${JSON.stringify(m)} for ${i}`);
    times.push(now() - t0);
    if (++i === n + warm) {
      c.disconnect();
      report(times);
      return;
    }
    t0 = now();
    c.send({ i });
  });
  t0 = now();
  c.send({ i });
}

function runSpawnd(base) {
  const u = new URL(base);
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
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
    const times = [];
    let t0 = 0;
    let i = 0;
    let line = '';
    const send = () => {
      t0 = now();
      req('POST', `/v1/jobs/${id}/messages`, { i }, (st2, s2) => {
        if (st2 !== 202) fail(`POST messages answered ${st2}: ${s2}`);
      });
    };
    const follow = http.get({ host: u.hostname, port: u.port, path: `/v1/jobs/${id}/messages?follow=true` }, (res) => {
      if (res.statusCode !== 200) fail(`GET messages answered ${res.statusCode}`);
      res.setEncoding('utf8');
      res.on('data', (d) => {
        line += d;
        let nl;
        while ((nl = line.indexOf('\n')) >= 0) {
          const ev = JSON.parse(line.slice(0, nl));
          line = line.slice(nl + 1);
          if (!ev.message || ev.message.i !== i) fail(`spawnd: got ${JSON.stringify(ev)} for ${i}`);
          times.push(now() - t0);
          if (++i === n + warm) {
            report(times);
            follow.destroy();
            req('DELETE', `/v1/jobs/${id}`, undefined, () => { agent.destroy(); });
            return;
          }
          send();
        }
      });
    });
    follow.on('error', () => {});
    send();
  });
}

if (!target || !(n > 0)) fail('usage: node fork_rtt.js local|URL [N]');
if (target === 'local') runLocal();
else runSpawnd(target);
