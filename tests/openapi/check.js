// Cross-checks docs/openapi.yaml (bundled and dereferenced to JSON by
// `redocly bundle`) against the server's source, so the document cannot
// drift from what spawnd serves:
//
//   - every route of server/http.c's routes[] table is an operation with the
//     same method and path, and every operation is a route;
//   - every error code of api/errors.c is in the ErrorCode enum, and some
//     response with its HTTP status names it;
//   - every request field api/request.c knows is a property of some request
//     body;
//   - every query parameter the server accepts (server/*.c "keys" lists) is a
//     parameter of some operation.
//
// usage: node check.js SRC_DIR BUNDLE.json
'use strict';
const fs = require('fs');
const path = require('path');

const [src, bundlePath] = process.argv.slice(2);
const doc = JSON.parse(fs.readFileSync(bundlePath, 'utf8'));
const read = (rel) => fs.readFileSync(path.join(src, rel), 'utf8');
let failures = 0, passed = 0;
function check(ok, what) {
  if (ok) passed++;
  else {
    failures++;
    console.error('FAIL: ' + what);
  }
}

// --- routes ------------------------------------------------------------------
const httpC = read('server/http.c');
const table = /static const struct route routes\[\]\s*=\s*\{([\s\S]*?)\n\};/.exec(httpC);
check(table, 'server/http.c: the routes[] table was not found');
const routes = new Set();
if (table) {
  const re = /\{\s*"([A-Z]+)"\s*,\s*"([^"]+)"/g;
  for (let m; (m = re.exec(table[1]));) routes.add(m[1] + ' ' + m[2]);
}
check(routes.size >= 10, `server/http.c: only ${routes.size} routes parsed from routes[]`);

const METHODS = ['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace'];
const operations = new Set();
for (const [p, item] of Object.entries(doc.paths || {}))
  for (const m of METHODS) if (item[m]) operations.add(m.toUpperCase() + ' ' + p);

for (const r of routes) check(operations.has(r), `route ${r} (server/http.c) is not in docs/openapi.yaml`);
for (const o of operations) check(routes.has(o), `operation ${o} (docs/openapi.yaml) is not a route in server/http.c`);

// --- error codes ----------------------------------------------------------------
function strings(schema, out = new Set(), seen = new Set()) {
  if (!schema || typeof schema !== 'object' || seen.has(schema)) return out;
  seen.add(schema);
  if (Array.isArray(schema.enum)) schema.enum.forEach((v) => out.add(v));
  if (typeof schema.const === 'string') out.add(schema.const);
  for (const v of Object.values(schema)) if (v && typeof v === 'object') strings(v, out, seen);
  return out;
}
// The codes each HTTP status is documented with (from every response's schema).
const byStatus = new Map();
function addResponse(status, resp) {
  if (!resp || !resp.content) return;
  const set = byStatus.get(status) || new Set();
  for (const media of Object.values(resp.content)) strings(media.schema, set);
  byStatus.set(status, set);
}
for (const item of Object.values(doc.paths || {}))
  for (const m of METHODS)
    for (const [status, resp] of Object.entries((item[m] && item[m].responses) || {}))
      addResponse(status, resp);
for (const resp of Object.values((doc.components && doc.components.responses) || {}))
  if (resp['x-spawnd-status']) addResponse(String(resp['x-spawnd-status']), resp);

const errorsC = read('api/errors.c');
const errorCodes = [];
{
  const re = /\[API_ERR_\w+\]\s*=\s*\{\s*(\d+)\s*,\s*"(\w+)"\s*\}/g;
  for (let m; (m = re.exec(errorsC));) errorCodes.push([m[1], m[2]]);
}
check(errorCodes.length >= 10, `api/errors.c: only ${errorCodes.length} error codes parsed`);
const enumCodes = new Set(((doc.components.schemas.ErrorCode || {}).enum) || []);
for (const [status, code] of errorCodes) {
  check(enumCodes.has(code), `error code ${code} (api/errors.c) is not in the ErrorCode enum`);
  check((byStatus.get(status) || new Set()).has(code),
        `no ${status} response in docs/openapi.yaml names ${code} (api/errors.c)`);
}
for (const code of enumCodes)
  check(errorCodes.some(([, c]) => c === code), `ErrorCode ${code} is not in api/errors.c`);
check(byStatus.has('422'), 'no 422 response (a process that could not start)');

// --- request fields -----------------------------------------------------------
function properties(schema, out = new Set(), seen = new Set()) {
  if (!schema || typeof schema !== 'object' || seen.has(schema)) return out;
  seen.add(schema);
  if (schema.properties && typeof schema.properties === 'object')
    Object.keys(schema.properties).forEach((k) => out.add(k));
  for (const v of Object.values(schema)) if (v && typeof v === 'object') properties(v, out, seen);
  return out;
}
const requestFields = new Set();
for (const item of Object.values(doc.paths || {}))
  for (const m of METHODS) {
    const body = item[m] && item[m].requestBody;
    if (body && body.content)
      for (const media of Object.values(body.content)) properties(media.schema, requestFields);
  }
const requestC = read('api/request.c');
const names = /field_names\[F__COUNT\]\s*=\s*\{([\s\S]*?)\};/.exec(requestC);
check(names, 'api/request.c: field_names[] was not found');
let nfields = 0;
if (names) {
  const re = /\[F_\w+\]\s*=\s*"(\w+)"/g;
  for (let m; (m = re.exec(names[1]));) {
    nfields++;
    check(requestFields.has(m[1]), `request field "${m[1]}" (api/request.c) is in no request body`);
  }
}
check(nfields >= 10, `api/request.c: only ${nfields} request fields parsed`);

// --- query parameters -----------------------------------------------------------
const queryParams = new Set();
for (const item of Object.values(doc.paths || {}))
  for (const m of METHODS)
    for (const p of [...(item.parameters || []), ...((item[m] && item[m].parameters) || [])])
      if (item[m] && p.in === 'query') queryParams.add(p.name);
for (const file of ['server/run.c', 'server/jobs.c']) {
  const text = read(file);
  const re = /const char \*const \w+\[\]\s*=\s*\{([^}]*)\}/g;
  for (let m; (m = re.exec(text));)
    for (const k of m[1].match(/"[^"]*"/g) || [])
      check(queryParams.has(k.slice(1, -1)),
            `query parameter ${k} (${file}) is a parameter of no operation`);
}

console.log(`openapi cross-check: ${routes.size} routes, ${operations.size} operations, ` +
            `${errorCodes.length} error codes, ${nfields} request fields`);
console.log(`${passed} passed, ${failures} failed`);
process.exit(failures ? 1 : 0);
