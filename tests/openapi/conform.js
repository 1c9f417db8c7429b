// Real answers against the document: drives a running spawnd through every
// operation of docs/openapi.yaml (and the error statuses it documents), and
// validates each answer's status, media type and body against the response
// the document gives for them: JSON bodies whole, NDJSON bodies line by line.
//
// usage: node conform.js BUNDLE.json URL TOKEN TOOLS_DIR HELPERS_DIR
// The server must run with --instance-id t0, --max-jobs 6 and
// --max-body-bytes 4096, with TOKEN as its token.
'use strict';
const fs = require('fs');
const path = require('path');

const [bundlePath, base, token, tools, helpers] = process.argv.slice(2);
const doc = JSON.parse(fs.readFileSync(bundlePath, 'utf8'));
const Ajv2020 = require(path.join(tools, 'node_modules/@redocly/ajv/dist/2020')).default;
const ajv = new Ajv2020({ strict: false, allErrors: true, validateFormats: false });

let failures = 0, passed = 0;
const covered = new Set();
function fail(what) {
  failures++;
  console.error('FAIL: ' + what);
}

// The document's operation for a concrete method and path.
function operation(method, url) {
  const p = url.split('?')[0];
  for (const [tmpl, item] of Object.entries(doc.paths)) {
    const re = new RegExp('^' + tmpl.replace(/\{[^}]+\}/g, '[^/]+') + '$');
    if (re.test(p) && item[method.toLowerCase()]) return [tmpl, item[method.toLowerCase()]];
  }
  return [null, null];
}

// The response the document gives: the operation's, or for requests outside
// the paths (unknown path, unlisted method) the component marked with
// x-spawnd-status.
function documented(method, url, status) {
  const [tmpl, op] = operation(method, url);
  if (op) return [tmpl, op.responses[String(status)]];
  for (const r of Object.values(doc.components.responses))
    if (String(r['x-spawnd-status']) === String(status)) return [null, r];
  return [tmpl, undefined];
}

const validators = new Map();
function validate(schema, value, what) {
  let v = validators.get(schema);
  if (!v) {
    v = ajv.compile(schema);
    validators.set(schema, v);
  }
  if (v(value)) return true;
  fail(`${what}: ${JSON.stringify(value).slice(0, 300)}\n      ${ajv.errorsText(v.errors)}`);
  return false;
}

async function call(method, url, { body, type, auth = true, expect, headers = {} } = {}) {
  const h = { ...headers };
  if (auth) h.Authorization = 'Bearer ' + token;
  if (body !== undefined) h['Content-Type'] = type || 'application/json';
  const res = await fetch(base + url, {
    method,
    headers: h,
    body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await res.text();
  const what = `${method} ${url} -> ${res.status}`;
  if (expect !== undefined && res.status !== expect) {
    fail(`${what}, expected ${expect}: ${text.slice(0, 300)}`);
    return { status: res.status, text };
  }
  const [tmpl, resp] = documented(method, url, res.status);
  if (tmpl) covered.add(`${method} ${tmpl} ${res.status}`);
  if (!resp) {
    fail(`${what}: status not documented`);
    return { status: res.status, text };
  }
  const ctype = (res.headers.get('content-type') || '').split(';')[0].trim();
  if (!resp.content) {
    if (text.length) fail(`${what}: documented without a body, got ${text.slice(0, 100)}`);
    else passed++;
    return { status: res.status, text, headers: res.headers };
  }
  const media = Object.entries(resp.content).find(([k]) => k.split(';')[0].trim() === ctype);
  if (!media) {
    fail(`${what}: Content-Type ${ctype} not documented (${Object.keys(resp.content)})`);
    return { status: res.status, text };
  }
  const schema = media[1].schema;
  if (!res.headers.get('x-request-id')) fail(`${what}: no X-Request-Id`);
  let json;
  if (ctype === 'application/json') {
    json = JSON.parse(text);
    if (validate(schema, json, what)) passed++;
  } else if (ctype === 'application/x-ndjson') {
    json = text.split('\n').filter((l) => l.length).map((l) => JSON.parse(l));
    if (!json.length) fail(`${what}: empty stream`);
    let ok = true;
    for (const line of json) ok = validate(schema, line, what + ' (line)') && ok;
    if (ok) passed++;
  } else {
    passed++; // text/plain metrics, octet-stream: strings
  }
  return { status: res.status, text, json, headers: res.headers };
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function main() {
  // operations
  await call('GET', '/healthz', { auth: false, expect: 200 });
  await call('GET', '/metrics', { expect: 200 });
  await call('GET', '/v1/version', { expect: 200 });
  await call('GET', '/v1/version', { auth: false, expect: 401 });
  await call('POST', '/v1/exec', { body: { command: 'echo out; echo err >&2; exit 3' }, expect: 200 });
  await call('POST', '/v1/exec', { body: { command: 'printf abcdefghij', max_buffer: 4 }, expect: 200 });
  await call('POST', '/v1/exec', { body: '{"command":', expect: 400 });
  await call('POST', '/v1/exec', { body: { command: 'true', timout_ms: 5 }, expect: 400 });
  await call('POST', '/v1/exec', { body: { command: 'true' }, type: 'text/plain', expect: 415 });
  await call('POST', '/v1/exec', { body: JSON.stringify({ command: 'x'.repeat(5000) }), expect: 413 });
  await call('POST', '/v1/execFile', { body: { file: 'sh', args: ['-c', 'kill -TERM $$'] }, expect: 200 });
  await call('POST', '/v1/execFile', { body: { file: 'no-such-program-conform' }, expect: 422 });
  await call('POST', '/v1/spawn', { body: { command: 'sh', args: ['-c', 'echo hi; echo oops >&2'] }, expect: 200 });
  await call('POST', '/v1/spawn?format=raw&stderr=merge', { body: { command: 'echo', args: ['raw'] }, expect: 200 });
  await call('POST', '/v1/spawn?format=xml', { body: { command: 'true' }, expect: 400 });
  await call('POST', '/v1/pipeline', {
    body: { steps: [{ command: 'sh', args: ['-c', 'echo a; echo e >&2'] }, { command: 'cat' }] },
    expect: 200,
  });
  await call('POST', '/v1/pipeline', { body: { steps: [{ command: 'true' }, { command: 'no-such-x' }] }, expect: 422 });

  // jobs
  const made = {};
  for (const [kind, body] of Object.entries({
    exec: { command: 'echo e' },
    execFile: { file: 'echo', args: ['f'] },
    spawn: { command: 'sh', args: ['-c', 'echo started; exec cat'] },
    pipeline: { steps: [{ command: 'echo', args: ['p'] }, { command: 'cat' }] },
  })) {
    const r = await call('POST', '/v1/jobs', { body: { kind, ...body }, expect: 201 });
    made[kind] = r.json && r.json.id;
    if (!/^t0\./.test(made[kind] || '')) fail(`job id ${made[kind]} does not start with the instance id`);
    if (r.headers && r.headers.get('location') !== '/v1/jobs/' + made[kind]) fail('Location of ' + kind);
  }
  await call('POST', '/v1/jobs', { body: { kind: 'nope' }, expect: 400 });
  await call('GET', '/v1/jobs', { expect: 200 });
  const id = made.spawn;
  await call('GET', `/v1/jobs/${id}`, { expect: 200 });
  await call('GET', '/v1/jobs/t0.AAAAAAAAAAAAAAAAAAAAAAAA', { expect: 404 });
  await call('GET', `/v1/jobs/${id}/wait?timeout_ms=50`, { expect: 408 });
  await call('GET', `/v1/jobs/${id}/output?follow=nope`, { expect: 400 });
  await call('POST', `/v1/jobs/${id}/stdin`, { body: 'hello\n', type: 'text/plain', expect: 204 });
  await sleep(200);
  await call('GET', `/v1/jobs/${id}/output`, { expect: 200 });
  await call('GET', `/v1/jobs/${id}/output?since=1`, { expect: 200 });
  await call('POST', `/v1/jobs/${id}/signal`, { body: { signal: 'SIGTERM' }, expect: 202 });
  await call('GET', `/v1/jobs/${id}/wait?timeout_ms=5000`, { expect: 200 });
  await call('GET', `/v1/jobs/${id}/output?follow=true`, { expect: 200 });
  await call('POST', `/v1/jobs/${id}/signal`, { body: { signal: 'SIGTERM' }, expect: 409 });
  await call('POST', `/v1/jobs/${id}/signal`, { body: { signal: 'SIGNOPE' }, expect: 400 });
  await call('POST', `/v1/jobs/${id}/stdin?close=true`, { body: 'x', type: 'text/plain', expect: 409 });
  await call('GET', `/v1/jobs/${id}/messages`, { expect: 409 });
  await call('POST', `/v1/jobs/${id}/messages`, { body: { a: 1 }, expect: 409 });
  for (const kind of ['exec', 'execFile', 'pipeline']) {
    await call('GET', `/v1/jobs/${made[kind]}/wait`, { expect: 200 });
    await call('GET', `/v1/jobs/${made[kind]}/output`, { expect: 200 });
  }
  await call('DELETE', `/v1/jobs/${id}`, { expect: 204 });
  await call('DELETE', `/v1/jobs/${id}`, { expect: 404 });

  // fork (needs node, which runs this script)
  const f = await call('POST', '/v1/fork', {
    body: { module: path.join(helpers, 'echo.js'), exec_path: process.execPath },
    expect: 201,
  });
  const fid = f.json && f.json.id;
  await call('POST', `/v1/jobs/${fid}/messages`, { body: { hello: [1, 2] }, expect: 202 });
  await call('POST', `/v1/jobs/${fid}/messages`, { body: '"text"', expect: 202 });
  for (let i = 0; i < 50; i++) {
    const r = await fetch(`${base}/v1/jobs/${fid}/messages`, { headers: { Authorization: 'Bearer ' + token } });
    if ((await r.text()).split('\n').filter((l) => l).length >= 2) break;
    await sleep(100);
  }
  await call('GET', `/v1/jobs/${fid}/messages?since=0`, { expect: 200 });
  await call('DELETE', `/v1/jobs/${fid}/messages`, { expect: 204 });
  await call('GET', `/v1/jobs/${fid}/messages?follow=true`, { expect: 200 });
  await call('POST', '/v1/jobs', { body: { kind: 'fork', module: 'x.js', exec_path: 'no-such-node' }, expect: 422 });

  // too many jobs (--max-jobs 6)
  const sleepers = [];
  for (let i = 0; i < 6; i++) {
    const r = await fetch(base + '/v1/jobs', {
      method: 'POST',
      headers: { Authorization: 'Bearer ' + token, 'Content-Type': 'application/json' },
      body: JSON.stringify({ kind: 'spawn', command: 'sleep', args: ['30'] }),
    });
    const j = await r.json();
    if (r.status === 201) sleepers.push(j.id);
  }
  await call('POST', '/v1/exec', { body: { command: 'true' }, expect: 429 });
  for (const s of sleepers) await call('DELETE', `/v1/jobs/${s}`, { expect: 204 });

  // requests outside the paths
  await call('DELETE', '/v1/exec', { expect: 405 });
  await call('GET', '/v1/nothing', { expect: 404 });

  // Every documented operation was exercised at least once.
  for (const [p, item] of Object.entries(doc.paths))
    for (const m of ['get', 'post', 'delete', 'put', 'patch'])
      if (item[m] && ![...covered].some((c) => c.startsWith(`${m.toUpperCase()} ${p} `)))
        fail(`operation ${m.toUpperCase()} ${p} was not exercised`);

  console.log(`openapi conformance: ${covered.size} (operation, status) pairs seen`);
  console.log(`${passed} passed, ${failures} failed`);
  process.exit(failures ? 1 : 0);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
