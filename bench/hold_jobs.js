'use strict';
/*
 * hold_jobs.js - start many background jobs through spawnd's HTTP API, or end
 * them again; used by bench/run.sh for "how many sleeping jobs does spawnd hold".
 *
 *   node hold_jobs.js create URL N IDS_FILE [SECONDS]
 *       POST /v1/jobs {"kind":"execFile","file":"/bin/sleep","args":[SECONDS]}
 *       N times (SECONDS: default 60), writes the ids of the accepted jobs (201)
 *       to IDS_FILE, one a line, and prints "ACCEPTED SECONDS_TAKEN STATUSES",
 *       STATUSES being e.g. "201:3990,429:10" ("err" for a failed connection).
 *   node hold_jobs.js delete URL IDS_FILE
 *       DELETE /v1/jobs/{id} for every id in IDS_FILE; prints
 *       "DELETED SECONDS_TAKEN STATUSES" (DELETED: answers 204).
 *
 * A few requests are in flight at once (IN_FLIGHT, default 8) over kept-alive
 * connections, so thousands take seconds. Nothing is retried: a refusal (429
 * --max-jobs, 503 out of descriptors) is counted, not hidden. Exit status 1
 * only when the arguments are wrong or nothing at all could be sent.
 */
const http = require('http');
const fs = require('fs');

const [mode, base, a3, a4, a5] = process.argv.slice(2);
const inFlight = Math.max(1, parseInt(process.env.IN_FLIGHT || '8', 10));

function fail(msg) {
  console.error(`hold_jobs: ${msg}`);
  process.exit(1);
}
if (!base || (mode !== 'create' && mode !== 'delete')) {
  fail('usage: hold_jobs.js create URL N IDS_FILE [SECONDS] | delete URL IDS_FILE');
}
const url = new URL(base);
const agent = new http.Agent({ keepAlive: true, maxSockets: inFlight });

function request(method, path, body) {
  return new Promise((resolve) => {
    const headers = {};
    if (body !== undefined) {
      headers['Content-Type'] = 'application/json';
      headers['Content-Length'] = Buffer.byteLength(body);
    }
    const req = http.request(
      { host: url.hostname, port: url.port, method, path, headers, agent },
      (res) => {
        res.resume(); // the job object is not needed: the id is in Location
        res.on('end', () => resolve({ status: res.statusCode, location: res.headers.location }));
        res.on('error', () => resolve({ status: 'err' }));
      },
    );
    req.setTimeout(30000, () => req.destroy(new Error('timeout')));
    req.on('error', () => resolve({ status: 'err' }));
    req.end(body);
  });
}

// Runs task(i) for i in [0, n) with at most inFlight at once.
async function pool(n, task) {
  let next = 0;
  const worker = async () => {
    while (next < n) await task(next++);
  };
  await Promise.all(Array.from({ length: Math.min(inFlight, n) }, worker));
}

function summary(counts) {
  return Object.keys(counts).sort().map((k) => `${k}:${counts[k]}`).join(',') || '-';
}

async function create(n, idsFile, secs) {
  const body = JSON.stringify({ kind: 'execFile', file: '/bin/sleep', args: [String(secs)] });
  const ids = [];
  const counts = {};
  const t0 = process.hrtime.bigint();
  await pool(n, async () => {
    const r = await request('POST', '/v1/jobs', body);
    counts[r.status] = (counts[r.status] || 0) + 1;
    if (r.status === 201 && r.location) ids.push(r.location.replace(/^.*\/v1\/jobs\//, ''));
  });
  const s = Number(process.hrtime.bigint() - t0) / 1e9;
  fs.writeFileSync(idsFile, ids.length ? ids.join('\n') + '\n' : '');
  if (n > 0 && (counts.err || 0) === n) fail(`no answer from ${base}`);
  console.log(`${ids.length} ${s.toFixed(2)} ${summary(counts)}`);
}

async function remove(idsFile) {
  const ids = fs.readFileSync(idsFile, 'utf8').split('\n').filter(Boolean);
  const counts = {};
  const t0 = process.hrtime.bigint();
  await pool(ids.length, async (i) => {
    const r = await request('DELETE', `/v1/jobs/${ids[i]}`);
    counts[r.status] = (counts[r.status] || 0) + 1;
  });
  const s = Number(process.hrtime.bigint() - t0) / 1e9;
  if (ids.length > 0 && (counts.err || 0) === ids.length) fail(`no answer from ${base}`);
  console.log(`${counts[204] || 0} ${s.toFixed(2)} ${summary(counts)}`);
}

(async () => {
  if (mode === 'create') {
    const n = parseInt(a3, 10);
    if (!(n >= 0) || !a4) fail('create needs N and IDS_FILE');
    await create(n, a4, parseInt(a5 || '60', 10));
  } else {
    if (!a3) fail('delete needs IDS_FILE');
    await remove(a3);
  }
  agent.destroy();
})();
