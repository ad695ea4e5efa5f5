// The API contract, checked by a validator nobody here wrote: Stoplight Prism (pinned in
// package.json) runs in proxy mode in front of the real service,
//   prism proxy web/openapi.json http://127.0.0.1:<service port> --errors -p <port>
// and every kind of request the black-box tests send goes through it: uploads (one file, several,
// with options in the form and in the query, raw bodies, Idempotency-Key), bad options, list, get,
// HEAD, cancel, retry, the event stream, thumbnails, health, readiness, metrics, the page, 401s and
// 404s. Prism checks each request and each answer against the spec: with --errors it answers 422
// (a request violation) or 500 (a response violation) with the violation in its body instead of
// the service's answer, and it reports every violation, warnings too, in an `sl-violations` header.
// Any of those fails this test, naming the request and Prism's text.
//
// A second Prism without --errors forwards requests the spec itself calls invalid (a bad option
// value the schema already rules out, such as quality=0): there the only violations allowed are
// the expected request violations, and the service's answer must still be the documented one (no
// response violation). The same request through the --errors Prism must get its 422, which shows
// that the spec documents the limit the service enforces.
//
// What Prism 5 cannot carry, checked straight against the service beside it instead:
// - Binary bodies. Prism reads every request body and every non-JSON answer as UTF-8 text and
//   forwards that text, so any byte that is not UTF-8 (a JPEG's first byte, 0xFF) arrives as
//   U+FFFD. A JPEG upload through Prism, multipart or raw `image/jpeg`, therefore reaches the
//   service as garbage (it answers 415 not_an_image, a documented answer, so the contract of the
//   request and the answer is still checked), and a thumbnail downloaded through it is not the
//   thumbnail's bytes. So the jobs made through Prism upload a BMP whose every byte is below 0x80
//   (it passes through intact), the real JPEG is uploaded directly too, multipart and raw, and the
//   thumbnails' bytes are compared directly; through Prism only their status and headers count.
// - A live event stream. Prism buffers the whole answer before it validates and sends it, and the
//   stream ends only when the service shuts down; so the first events are read directly from the
//   service, and one stream is sent through Prism just before a SIGTERM, which ends it with its
//   `event: reconnect`, so Prism gets and checks the whole answer.
// - HEAD of a JSON answer (HEAD /api/v1/jobs/{id}): Prism parses the body of every
//   application/json answer, a HEAD's empty one too, and answers 500 itself; so that HEAD is
//   checked directly (GET's headers, no body). HEAD of a thumbnail goes through Prism.
// - Routes outside the spec (an unknown path's 404, another method's 405): Prism answers those
//   itself, so they are checked directly for the documented error JSON.
// The service runs four times on one data directory and port, Prism staying up: with no workers
// (every job waits, so cancel and retry are certain), with one worker (the jobs finish), with API
// and metrics tokens (the 401s), and with small limits (413, 429).
//   node contract_test.mjs QUICKTHUMB_BINARY
//   QT_CONTRACT_SPEC=FILE   check against another description (e.g. an edited copy) than web/openapi.json
//   QT_CONTRACT_LOGS=DIR    keep both Prisms' logs there
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, existsSync, mkdirSync, writeFileSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import http from 'node:http';
import net from 'node:net';

const binary = process.argv[2];
if (!binary) {
  console.error('usage: node contract_test.mjs QUICKTHUMB_BINARY');
  process.exit(2);
}
const here = dirname(fileURLToPath(import.meta.url));
const SPEC = process.env.QT_CONTRACT_SPEC || join(here, '..', '..', 'web', 'openapi.json');
const PRISM = join(here, 'node_modules', '.bin', 'prism');
if (!existsSync(PRISM)) {
  console.error(`${PRISM} is missing: run npm ci in ${here} (scripts/setup --test does)`);
  process.exit(2);
}
// The Prism that runs is the one package.json pins (a stale node_modules would test another).
const pinned = JSON.parse(readFileSync(join(here, 'package.json'), 'utf8')).devDependencies['@stoplight/prism-cli'];
const installed = JSON.parse(readFileSync(join(here, 'node_modules', '@stoplight', 'prism-cli', 'package.json'), 'utf8')).version;
if (installed !== pinned) {
  console.error(`@stoplight/prism-cli ${installed} is installed, package.json pins ${pinned}: run npm ci in ${here}`);
  process.exit(2);
}
const started = Date.now();

// ---- images, made here so the test needs no files from elsewhere ----

// A 96x64 baseline JPEG (a gradient with a checker pattern), 763 bytes.
const PHOTO_JPG = Buffer.from(
  '/9j/4AAQSkZJRgABAQAAAQABAAD/2wBDAA0JCgsKCA0LCgsODg0PEyAVExISEyccHhcgLikxMC4pLSwzOko+MzZGNywtQFdBRkxOUlNSMj5aYVpQYEpRUk//' +
  '2wBDAQ4ODhMREyYVFSZPNS01T09PT09PT09PT09PT09PT09PT09PT09PT09PT09PT09PT09PT09PT09PT09PT09PT0//wAARCABAAGADASIAAhEBAxEB/8QA' +
  'FwABAQEBAAAAAAAAAAAAAAAABAUDB//EABYQAAMAAAAAAAAAAAAAAAAAAAACA//EABcBAQEBAQAAAAAAAAAAAAAAAAQDBwX/xAAeEQAABQUBAAAAAAAAAAAA' +
  'AAAAAgMREgEVUWKBkf/aAAwDAQACEQMRAD8A5usykszdZhVmdWp7ZtLjN7kRIpMHWZSWYhZhVmTqe2bS4ze5DCKTB1mUlmIWYVZk6ntm0uM3uQwikwdZlJZi' +
  'FmEWZOp7ZtLjN7kMTUmMFmUlmbrMKsydT2zaXGb3IaRSYwWZSWZuswqzJ1PbNpcZvchhFJiAsykszdZhVmIqe2bS4ze5GZpqTB1mUlmIWYVZk6ntm0uM3uQx' +
  'NSYOsyksxCzCrMnU9s2lxm9yGEUmDrMpLMQswqzJ1PbNpcZvchiakwdZlJZiFmEWZOp7ZtLjN7kMTUmMFmUlmbrMKsydT2zaXGb3IYmpMQFmUlmbrMKsxFT2' +
  'zaXGb3IzNNSYwWZSWZuswqzJ1PbNpcZvchpFJg6zKSzELMKsydT2zaXGb3IYRSYOsyksxCzCrMnU9s2lxm9yGJqTB1mUlmIWYVZk6ntm0uM3uQxNSYOsyksz' +
  'dZhVmSqe2bS4ze5DCKTEBZlJZm6zCrMTU9s2lxm9yMzIpMYLMpLM3WYVZk6ntm0uM3uQwikxgsyisxCzCrMnU9s2lxm9yGEUmDrMpLMQswqzJ1PbNpcZvchi' +
  'akwdZlJZiFmFWZKp7ZtLjN7kNIpMHWZSWYhZhFmTqe2bS4ze5DCKTH//2Q==', 'base64');

// A BMP (24-bit, bottom-up) whose every byte is below 0x80, so it survives Prism's UTF-8 round
// trip: the header fields are small numbers and the pixels a dark gradient.
function asciiBmp(w, h, tint) {
  const row = Math.ceil((w * 3) / 4) * 4;
  const size = 54 + row * h;
  const b = Buffer.alloc(size);
  b.write('BM', 0, 'ascii');
  b.writeUInt32LE(size, 2);
  b.writeUInt32LE(54, 10);
  b.writeUInt32LE(40, 14);
  b.writeInt32LE(w, 18);
  b.writeInt32LE(h, 22);
  b.writeUInt16LE(1, 26);
  b.writeUInt16LE(24, 28);
  for (let y = 0; y < h; y++)
    for (let x = 0; x < w; x++) {
      const o = 54 + y * row + x * 3;
      b[o] = tint & 0x7f; b[o + 1] = ((y * 127) / h) | 0; b[o + 2] = ((x * 127) / w) | 0;
    }
  for (const byte of b) if (byte >= 0x80) throw new Error(`asciiBmp(${w}, ${h}): a byte is not ASCII`);
  return b;
}
const BMP = asciiBmp(64, 40, 40);
const BMP2 = asciiBmp(40, 64, 100);
// A GIF header with no image in it: sniffed as a GIF, accepted, and failed by the worker.
const BROKEN_GIF = Buffer.from('GIF89a\x10\x00\x10\x00\x00\x00\x00;', 'latin1');
// The start of a little-endian TIFF: refused at upload as an unsupported format.
const TIFF = Buffer.from('II*\x00\x08\x00\x00\x00\x00\x00', 'latin1');

// ---- processes ----

function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => { const { port } = srv.address(); srv.close(() => resolve(port)); });
  });
}

// Starts `quickthumb serve` on `port` and waits for its "listening on" line.
function startService(dataDir, port, extra) {
  return new Promise((resolve, reject) => {
    const child = spawn(binary, ['serve', '--bind', '127.0.0.1', '--port', String(port), '--data', dataDir,
      '--upload-rate', '0', ...extra], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    const timer = setTimeout(() => reject(new Error('quickthumb: no "listening" line in 30 s:\n' + out)), 30000);
    const onData = (d) => {
      out = (out + d.toString()).slice(-20000);
      if (/listening on http:\/\/[0-9.]+:[0-9]+/.test(out)) { clearTimeout(timer); resolve(service); }
    };
    const service = { child, output: () => out, exited: false };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.on('exit', (code, sig) => {
      service.exited = true;
      clearTimeout(timer);
      reject(new Error(`quickthumb exited with ${code ?? sig}:\n${out}`));
    });
  });
}

function stopProcess(p, signal = 'SIGTERM') {
  return new Promise((resolve) => {
    if (!p || p.exited || p.child.exitCode !== null || p.child.signalCode !== null) return resolve();
    p.child.removeAllListeners('exit');
    p.child.once('exit', (code, sig) => { p.exited = true; resolve(code ?? sig); });
    p.child.kill(signal);
  });
}

// Starts Prism from node_modules/.bin and waits for "Prism is listening".
function startPrism(port, upstreamPort, flags) {
  return new Promise((resolve, reject) => {
    const args = ['proxy', SPEC, `http://127.0.0.1:${upstreamPort}`, ...flags, '-p', String(port), '-h', '127.0.0.1'];
    const child = spawn(PRISM, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, FORCE_COLOR: '0' } });
    const prism = { child, log: '', exited: false, url: `http://127.0.0.1:${port}`, waiters: [] };
    const timer = setTimeout(() => reject(new Error('prism: not listening after 60 s:\n' + prism.log)), 60000);
    const onData = (d) => {
      prism.log = (prism.log + d.toString()).slice(-200000);
      prism.waiters = prism.waiters.filter((w) => !w());
      if (/Prism is listening on/.test(prism.log)) { clearTimeout(timer); resolve(prism); }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.on('exit', (code, sig) => {
      prism.exited = true;
      clearTimeout(timer);
      reject(new Error(`prism exited with ${code ?? sig}:\n${prism.log}`));
    });
  });
}

// Resolves when Prism's log (from `from` on) matches `re`; rejects after `ms`.
function prismLogged(prism, from, re, ms) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`prism never logged ${re} in ${ms} ms`)), ms);
    const test = () => {
      if (re.test(prism.log.slice(from))) { clearTimeout(timer); resolve(); return true; }
      return false;
    };
    if (!test()) prism.waiters.push(test);
  });
}

// Polls `fn` (async, returns a truthy value when done) until it is done or `ms` have passed.
async function eventually(what, ms, fn) {
  const until = Date.now() + ms;
  let last;
  for (;;) {
    try { last = await fn(); } catch (e) { last = e; }
    if (last && !(last instanceof Error)) return last;
    if (Date.now() > until) throw new Error(`${what}: not done within ${ms} ms (last: ${last instanceof Error ? last.message : JSON.stringify(last)})`);
    await new Promise((r) => setTimeout(r, 50));  // the poll's pace, not a wait for something
  }
}

// ---- requests and checks ----

let passed = 0;
const failures = [];
function ok(what) { passed++; console.log('ok - ' + what); }
function fail(what, why) {
  failures.push(what);
  console.log('not ok - ' + what + '\n    ' + String(why).split('\n').join('\n    '));
}
function check(cond, what, why = '') { if (cond) ok(what); else fail(what, why); return cond; }

// A multipart body: `files` as [field, filename, type, bytes], `fields` as [name, value].
function form(files, fields = []) {
  const f = new FormData();
  for (const [name, value] of fields) f.append(name, value);
  for (const [field, filename, type, bytes] of files) f.append(field, new Blob([bytes], { type }), filename);
  return f;
}

async function send(base, req) {
  const headers = { ...(req.headers || {}) };
  let body = req.body;
  if (Buffer.isBuffer(body) && !headers['Content-Type']) headers['Content-Type'] = 'application/octet-stream';
  const res = await fetch(base + req.path, { method: req.method || 'GET', headers, body, redirect: 'manual' });
  const bytes = Buffer.from(await res.arrayBuffer());
  const type = res.headers.get('content-type') || '';
  const r = { status: res.status, headers: res.headers, type, bytes, text: bytes.toString('utf8'), json: null };
  if (/json/.test(type) && bytes.length) { try { r.json = JSON.parse(r.text); } catch (_) { /* left null */ } }
  return r;
}

function describe(req) { return `${req.method || 'GET'} ${req.path}`; }

// What Prism said about a request: its own problem answer (422, 500, or a route it has not got)
// and the sl-violations header.
function prismComplaints(r) {
  const out = [];
  if (/application\/problem\+json/.test(r.type)) {
    const p = r.json || {};
    const v = (p.validation || []).map((x) => `${(x.location || []).join('.')}: ${x.message} (${x.severity})`);
    out.push(`Prism answered ${r.status} "${p.title}": ${p.detail}${v.length ? '\n  ' + v.join('\n  ') : ''}`);
  }
  const header = r.headers.get('sl-violations');
  if (header) out.push('sl-violations: ' + header);
  return out;
}

// The code of an error answer ({"error": {...}} alone; a job's own `error` does not count).
function errorCode(r) { return r.json && !('id' in r.json) && r.json.error && typeof r.json.error === 'object' ? r.json.error.code : undefined; }

// Through the --errors Prism: no violation of any kind, and the expected status (and error code).
async function contract(what, req, expect = {}) {
  const name = `${describe(req)}: ${what}`;
  let r;
  try { r = await send(strict.url, req); } catch (e) { fail(name, 'request failed: ' + e.message); return null; }
  const complaints = prismComplaints(r);
  const statuses = [].concat(expect.status ?? 200);
  if (complaints.length) {
    fail(name, complaints.join('\n'));
  } else if (!statuses.includes(r.status)) {
    fail(name, `status ${r.status}, expected ${statuses.join(' or ')}: ${r.text.slice(0, 500)}`);
  } else if (expect.code && errorCode(r) !== expect.code) {
    fail(name, `error code ${errorCode(r)}, expected ${expect.code}: ${r.text.slice(0, 500)}`);
  } else if (expect.quiet) {
    passed++;
  } else {
    ok(`${name} -> ${r.status}${errorCode(r) ? ' ' + errorCode(r) : ''}, no violation`);
  }
  return r;
}

// A request the spec itself rules out (`where`: the violation's location, e.g. /^request\.query\.quality$/).
// The --errors Prism refuses it with 422 naming that place; the lenient Prism forwards it, and
// the service's answer is the documented one: no response violation, the expected status and code.
async function outOfContract(what, req, where, expect) {
  const name = `${describe(req())}: ${what}`;
  const refused = await send(strict.url, req());
  const named = refused.status === 422 && refused.json && (refused.json.validation || []).some((v) =>
    where.test(['request', ...(v.location || [])].join('.')));
  if (!named) fail(`${name}: the spec rules it out`, `expected Prism's 422 naming ${where}, got ${refused.status}: ${refused.text.slice(0, 500)}`);
  const r = await send(lenient.url, req());
  let violations = [];
  try { violations = JSON.parse(r.headers.get('sl-violations') || '[]'); } catch (e) { violations = [{ location: ['?'], message: r.headers.get('sl-violations') }]; }
  const text = (v) => `${(v.location || []).join('.')}: ${v.message} (${v.severity})`;
  const responseViolations = violations.filter((v) => (v.location || [])[0] !== 'request');
  const unexpected = violations.filter((v) => (v.location || [])[0] === 'request' && !where.test(v.location.join('.')));
  if (/application\/problem\+json/.test(r.type)) fail(name, `Prism answered itself: ${r.text.slice(0, 500)}`);
  else if (responseViolations.length) fail(name, 'the service\'s answer violates the spec:\n  ' + responseViolations.map(text).join('\n  '));
  else if (unexpected.length) fail(name, 'other request violations than ' + where + ':\n  ' + unexpected.map(text).join('\n  '));
  else if (r.status !== expect.status || (expect.code && errorCode(r) !== expect.code))
    fail(name, `the service answered ${r.status} ${errorCode(r)}, expected ${expect.status} ${expect.code || ''}: ${r.text.slice(0, 500)}`);
  else if (named) ok(`${name} -> Prism's 422 names ${where.source}; the service's ${r.status} ${errorCode(r) || ''} is as documented`);
  return r;
}

// Straight to the service.
async function direct(what, req, expect = {}) {
  const name = `${describe(req)} (direct): ${what}`;
  let r;
  try { r = await send(serviceUrl, req); } catch (e) { fail(name, 'request failed: ' + e.message); return null; }
  const statuses = [].concat(expect.status ?? 200);
  if (!statuses.includes(r.status)) fail(name, `status ${r.status}, expected ${statuses.join(' or ')}: ${r.text.slice(0, 500)}`);
  else if (expect.code && errorCode(r) !== expect.code) fail(name, `error code ${errorCode(r)}, expected ${expect.code}: ${r.text.slice(0, 300)}`);
  else ok(`${name} -> ${r.status}${errorCode(r) ? ' ' + errorCode(r) : ''}`);
  return r;
}

// The documented error JSON, for answers Prism cannot check: {"error": {"code", "message"}} and nothing else.
function isErrorJson(r) {
  return !!(r && r.json && Object.keys(r.json).length === 1 && r.json.error && Object.keys(r.json.error).sort().join() === 'code,message' &&
    typeof r.json.error.code === 'string' && typeof r.json.error.message === 'string');
}

// Reads an event stream straight from the service until `enough(text)`, then closes it.
function readEvents(path, enough, ms, onOpen) {
  return new Promise((resolve, reject) => {
    let text = '';
    const req = http.get(serviceUrl + path, { headers: { Accept: 'text/event-stream' } }, (res) => {
      const done = (err) => { clearTimeout(timer); req.destroy(); err ? reject(err) : resolve({ status: res.statusCode, headers: res.headers, text }); };
      const timer = setTimeout(() => done(new Error(`${path}: not enough events in ${ms} ms:\n${text}`)), ms);
      res.setEncoding('utf8');
      res.on('error', () => {});  // the close below
      res.on('data', (d) => { text += d; if (enough(text)) done(); });
      res.on('end', () => done(enough(text) ? null : new Error(`${path}: the stream ended early:\n${text}`)));
      Promise.resolve(onOpen && onOpen()).catch(done);
    });
    req.on('error', reject);
  });
}

// Event blocks of an SSE text: [{id, event, data}].
function sseEvents(text) {
  return text.split('\n\n').filter((b) => b.trim() && !b.startsWith(':')).map((b) => {
    const e = {};
    for (const line of b.split('\n')) {
      const at = line.indexOf(':');
      if (at > 0) e[line.slice(0, at)] = line.slice(at + 1).replace(/^ /, '');
    }
    return e;
  });
}

const FINAL = ['succeeded', 'failed', 'cancelled'];
// Polls GET /api/v1/jobs/{id} through Prism (each answer checked) until the job is final.
async function waitFinal(id, ms = 60000) {
  let polls = 0;
  const job = await eventually(`job ${id} final`, ms, async () => {
    polls++;
    const r = await contract('polled until final', { path: `/api/v1/jobs/${id}` }, { quiet: true });
    if (!r || r.status !== 200) throw new Error('GET failed');
    return FINAL.includes(r.json.state) ? r.json : null;
  });
  ok(`GET /api/v1/jobs/${id}: polled ${polls} times until ${job.state}, no violation`);
  return job;
}

// ---- the run ----

const work = mkdtempSync(join(tmpdir(), 'qt-contract-'));
const data = join(work, 'data');
let service, strict, lenient, serviceUrl;
try {
  const [servicePort, strictPort, lenientPort] = await Promise.all([freePort(), freePort(), freePort()]);
  serviceUrl = `http://127.0.0.1:${servicePort}`;
  // Phase 1: no workers, so every job waits and can be cancelled and retried for certain.
  service = await startService(data, servicePort, ['--workers', '0']);
  [strict, lenient] = await Promise.all([
    startPrism(strictPort, servicePort, ['--errors']),
    startPrism(lenientPort, servicePort, []),
  ]);
  console.log(`# prism ${installed}: ${strict.url} (--errors) and ${lenient.url} in front of quickthumb at ${serviceUrl}; ${SPEC}`);

  // Health, readiness, metrics, this description and the page.
  const healthz = await contract('liveness', { path: '/healthz' });
  check(healthz?.json?.status === 'ok', 'GET /healthz says ok');
  const ready = await contract('readiness', { path: '/readyz' });
  check(ready?.json?.status === 'ready', 'GET /readyz says ready', ready?.text);
  await contract('metrics', { path: '/metrics' });
  await contract('the description', { path: '/openapi.json' });
  for (const p of ['/', '/index.html', '/app.js', '/style.css']) await contract('an embedded page file', { path: p });

  await contract('an empty list', { path: '/api/v1/jobs' });

  // Uploads that make jobs.
  const bmp = (name = 'photo.bmp', bytes = BMP) => ['file', name, 'image/bmp', bytes];
  const one = await contract('one file (-F file=@photo.bmp): one job', { method: 'POST', path: '/api/v1/jobs', body: form([bmp()]) }, { status: 202 });
  const jobA = one?.json?.id;
  check(!!jobA && one.headers.get('location') === `/api/v1/jobs/${jobA}` && one.json.state === 'queued',
    'the one job is queued, and Location names it', one?.text);
  const two = await contract('several file parts: {"jobs": [...]}', { method: 'POST', path: '/api/v1/jobs',
    body: form([bmp('a.bmp'), bmp('b.bmp', BMP2)]) }, { status: 202 });
  check(two?.json?.jobs?.length === 2 && two.json.jobs[1].source.filename === 'b.bmp', 'two files, two jobs in order', two?.text);
  const aliases = await contract('the other names of the file field: files and file[]', { method: 'POST', path: '/api/v1/jobs',
    body: form([['files', 'c.bmp', 'image/bmp', BMP], ['file[]', 'd.bmp', 'image/bmp', BMP2]]) }, { status: 202 });
  check(aliases?.json?.jobs?.length === 2, 'files and file[] parts make a job each', aliases?.text);
  const withForm = await contract('every option as a form field', { method: 'POST', path: '/api/v1/jobs', body: form([bmp('opts.bmp')], [
    ['sizes', '64,32x32,40x,x20'], ['fit', 'cover'], ['format', 'webp'], ['quality', '70'], ['enlarge', 'true'],
    ['progressive', '0'], ['background', '#336699'], ['keep_metadata', 'false'], ['max_attempts', '2']]) }, { status: 202 });
  check(withForm?.json?.params?.format === 'webp' && withForm.json.params.sizes.length === 4 && withForm.json.max_attempts === 2,
    'the form options are in the job', withForm?.text);
  const withQuery = await contract('options in the query', { method: 'POST',
    path: '/api/v1/jobs?width=50&height=40&fit=fill&format=jpg&quality=55&progressive=true&background=%23102030&enlarge=1&keep_metadata=1&max_attempts=3',
    body: form([bmp('query.bmp')]) }, { status: 202 });
  check(withQuery?.json?.params?.format === 'jpeg' && withQuery.json.params.progressive === true, 'the query options are in the job', withQuery?.text);
  const png = await contract('format=png', { method: 'POST', path: '/api/v1/jobs?format=png&sizes=48', body: form([bmp('png.bmp')]) }, { status: 202 });
  const raw = await contract('a raw image/bmp body named by ?filename=', { method: 'POST', path: '/api/v1/jobs?filename=raw.bmp&sizes=32',
    headers: { 'Content-Type': 'image/bmp' }, body: BMP }, { status: 202 });
  check(raw?.json?.source?.filename === 'raw.bmp' && raw.json.source.bytes === BMP.length,
    'the raw body arrived whole (Prism passes these ASCII bytes intact)', raw?.text);
  await contract('a raw application/octet-stream body', { method: 'POST', path: '/api/v1/jobs',
    headers: { 'Content-Type': 'application/octet-stream' }, body: BMP2 }, { status: 202 });
  const keyed = await contract('with an Idempotency-Key', { method: 'POST', path: '/api/v1/jobs',
    headers: { 'Idempotency-Key': 'contract-key-1' }, body: form([bmp('keyed.bmp')]) }, { status: 202 });
  const replay = await contract('the same Idempotency-Key again: the first job, replayed', { method: 'POST', path: '/api/v1/jobs',
    headers: { 'Idempotency-Key': 'contract-key-1' }, body: form([bmp('keyed.bmp')]) }, { status: 202 });
  check(replay?.json?.id === keyed?.json?.id && replay.headers.get('idempotent-replayed') === 'true',
    'the replay names the first job and says Idempotent-Replayed: true', replay?.text);
  const broken = await contract('a GIF with no image (accepted; its job fails)', { method: 'POST', path: '/api/v1/jobs?max_attempts=1',
    body: form([['file', 'broken.gif', 'image/gif', BROKEN_GIF]]) }, { status: 202 });
  const toCancel = await contract('one more, to cancel', { method: 'POST', path: '/api/v1/jobs', body: form([bmp('cancel-me.bmp')]) }, { status: 202 });

  // A real JPEG: see the top of this file. Through Prism its bytes arrive as UTF-8 replacement
  // characters, so the service refuses it (415 not_an_image, documented; 202 if a later Prism
  // kept binary bodies intact). Straight to the service it is a photo like any other.
  for (const [what, req] of [
    ['a real JPEG, multipart', { method: 'POST', path: '/api/v1/jobs', body: form([['file', 'photo.jpg', 'image/jpeg', PHOTO_JPG]]) }],
    ['a real JPEG, raw image/jpeg', { method: 'POST', path: '/api/v1/jobs?filename=photo.jpg', headers: { 'Content-Type': 'image/jpeg' }, body: PHOTO_JPG }],
  ]) {
    const r = await contract(what + ' through Prism', req, { status: [202, 415] });
    if (r) console.log(`#   ${r.status === 202 ? 'Prism passed the JPEG intact' : 'Prism mangled the JPEG: ' + r.json?.error?.message}`);
  }
  const jpegMultipart = await direct('a real JPEG, multipart (-F file=@photo.jpg)', { method: 'POST', path: '/api/v1/jobs',
    body: form([['file', 'photo.jpg', 'image/jpeg', PHOTO_JPG]]) }, { status: 202 });
  const jpegRaw = await direct('a real JPEG, raw image/jpeg', { method: 'POST', path: '/api/v1/jobs?filename=photo.jpg',
    headers: { 'Content-Type': 'image/jpeg' }, body: PHOTO_JPG }, { status: 202 });
  check(jpegRaw?.json?.source?.bytes === PHOTO_JPG.length && jpegMultipart?.json?.source?.bytes === PHOTO_JPG.length,
    'directly, the JPEG arrives whole', `${jpegRaw?.text} ${jpegMultipart?.text}`);

  // Refused uploads the spec's schema allows: the service's documented 4xx, through Prism.
  const up = (fields, query = '', files = [bmp('bad.bmp')]) => ({ method: 'POST', path: '/api/v1/jobs' + query, body: form(files, fields) });
  await contract('a size of 0', up([['sizes', '64,0']]), { status: 400, code: 'invalid_option' });
  await contract('nine sizes', up([], '?sizes=1,2,3,4,5,6,7,8,9'), { status: 400, code: 'invalid_option' });
  await contract('sizes and width together', up([['sizes', '64'], ['width', '64']]), { status: 400, code: 'invalid_option' });
  await contract('quality 500', up([['quality', '500']]), { status: 400, code: 'invalid_option' });
  await contract('width 9000', up([['width', '9000']]), { status: 400, code: 'invalid_option' });
  await contract('max_attempts 0', up([['max_attempts', '0']]), { status: 400, code: 'invalid_option' });
  await contract('an unknown option', up([['colour', 'red']]), { status: 400, code: 'invalid_option' });
  await contract('an unknown query option', up([], '?colour=red'), { status: 400, code: 'invalid_option' });
  await contract('the same option in the query and the form', up([['format', 'png']], '?format=png'), { status: 400, code: 'invalid_option' });
  await contract('an empty file', up([], '', [['file', 'empty.jpg', 'image/jpeg', Buffer.alloc(0)]]), { status: 400, code: 'bad_request' });
  await contract('a text file', up([], '', [['file', 'notes.txt', 'image/jpeg', Buffer.from('these are my notes, not a picture\n')]]),
    { status: 415, code: 'not_an_image' });
  await contract('a TIFF', up([], '', [['file', 'scan.tif', 'image/tiff', TIFF]]), { status: 415, code: 'unsupported_format' });
  await contract('a raw TIFF', { method: 'POST', path: '/api/v1/jobs?filename=s.tif', headers: { 'Content-Type': 'image/jpeg' }, body: TIFF },
    { status: 415, code: 'unsupported_format' });
  await contract('one good file and one TIFF: all refused', up([], '', [bmp('ok.bmp'), ['file', 'scan.tif', 'image/tiff', TIFF]]),
    { status: 415, code: 'unsupported_format' });

  // Refused uploads the spec's schema rules out: Prism's 422 names the field, and the service's 400 is documented.
  await outOfContract('quality 0 in the query', () => up([], '?quality=0'), /^request\.query\.quality$/, { status: 400, code: 'invalid_option' });
  await outOfContract('fit=stretch in the query', () => up([], '?fit=stretch'), /^request\.query\.fit$/, { status: 400, code: 'invalid_option' });
  await outOfContract('format=tiff in the query', () => up([], '?format=tiff'), /^request\.query\.format$/, { status: 400, code: 'invalid_option' });
  await outOfContract('fit=squash in the form', () => up([['fit', 'squash']]), /^request\.body\.fit$/, { status: 400, code: 'invalid_option' });
  await outOfContract('width -3 in the form', () => up([['width', '-3']]), /^request\.body\.width$/, { status: 400, code: 'invalid_option' });
  await outOfContract('enlarge=maybe in the form', () => up([['enlarge', 'maybe']]), /^request\.body\.enlarge$/, { status: 400, code: 'invalid_option' });
  await outOfContract('background=blue in the form', () => up([['background', 'blue']]), /^request\.body\.background$/, { status: 400, code: 'invalid_option' });
  await outOfContract('an Idempotency-Key of 256 characters', () => ({ method: 'POST', path: '/api/v1/jobs', headers: { 'Idempotency-Key': 'x'.repeat(256) },
    body: form([bmp()]) }), /^request\.header\.idempotency-key$/i, { status: 400, code: 'bad_request' });
  await outOfContract('no file at all', () => up([['width', '10']], '', []), /^request\.body(\.file)?$/, { status: 400, code: 'bad_request' });
  await outOfContract('a text/plain body', () => ({ method: 'POST', path: '/api/v1/jobs', headers: { 'Content-Type': 'text/plain' }, body: 'hello' }),
    /^request(\.body)?$/, { status: 415, code: 'unsupported_media_type' });

  // Listing and getting.
  const list = await contract('list', { path: '/api/v1/jobs?state=queued&limit=100' });
  check(list?.json?.jobs?.length >= 10 && list.json.jobs.every((j) => j.state === 'queued'), 'the list has the queued jobs', list?.text?.slice(0, 300));
  const page1 = await contract('a page of two', { path: '/api/v1/jobs?limit=2' });
  check(page1?.json?.jobs?.length === 2 && typeof page1.json.next_cursor === 'string', 'a first page with a next_cursor', page1?.text?.slice(0, 300));
  if (page1?.json?.next_cursor) await contract('the next page', { path: `/api/v1/jobs?limit=2&cursor=${page1.json.next_cursor}` });
  await contract('an unknown parameter', { path: '/api/v1/jobs?colour=red' }, { status: 400, code: 'invalid_option' });
  await outOfContract('limit=0', () => ({ path: '/api/v1/jobs?limit=0' }), /^request\.query\.limit$/, { status: 400, code: 'invalid_option' });
  await outOfContract('state=done', () => ({ path: '/api/v1/jobs?state=done' }), /^request\.query\.state$/, { status: 400, code: 'invalid_option' });
  await contract('a job', { path: `/api/v1/jobs/${jobA}` });
  await contract('no such job', { path: '/api/v1/jobs/AAAAAAAAAAAAAAAAAAAAAA' }, { status: 404, code: 'not_found' });
  // HEAD of a JSON answer, directly: Prism parses the JSON of every application/json answer, a
  // HEAD's (which has none) too, and answers 500 itself.
  const getA = await direct('the job, to compare with HEAD', { path: `/api/v1/jobs/${jobA}` });
  const headA = await direct('a job\'s headers', { method: 'HEAD', path: `/api/v1/jobs/${jobA}` });
  check(headA?.type === 'application/json' && headA.bytes.length === 0 && headA.headers.get('content-length') === String(getA?.bytes.length),
    'HEAD: GET\'s Content-Type and Content-Length, no body', `${headA?.type} ${headA?.headers.get('content-length')} vs ${getA?.bytes.length}`);
  await direct('no such job\'s headers', { method: 'HEAD', path: '/api/v1/jobs/AAAAAAAAAAAAAAAAAAAAAA' }, { status: 404 });
  await outOfContract('a malformed job id', () => ({ path: '/api/v1/jobs/nope' }), /^request\.path\.id$/, { status: 404, code: 'not_found' });

  // Cancel and retry, with the first events read straight from the stream meanwhile.
  const cancelId = toCancel?.json?.id;
  const stream = await readEvents(`/api/v1/events?job=${cancelId}`, (t) => sseEvents(t).some((e) => e.event === 'job'), 15000, async () => {
    const c = await contract('cancel a waiting job', { method: 'DELETE', path: `/api/v1/jobs/${cancelId}` });
    check(c?.json?.state === 'cancelled', 'it is cancelled at once', c?.text);
  });
  const first = sseEvents(stream.text).find((e) => e.event === 'job');
  let firstData = null;
  try { firstData = JSON.parse(first.data); } catch (_) { /* checked below */ }
  check(stream.status === 200 && /^text\/event-stream/.test(stream.headers['content-type']) && /^retry: 2000\n\n/.test(stream.text) &&
    /^[0-9]+$/.test(first?.id || '') && firstData?.id === cancelId && firstData?.state === 'cancelled',
    'GET /api/v1/events (direct): text/event-stream, retry: 2000, then an `event: job` with the cancelled job', stream.text.slice(0, 600));
  await contract('cancel it again', { method: 'DELETE', path: `/api/v1/jobs/${cancelId}` });
  await contract('cancel no such job', { method: 'DELETE', path: '/api/v1/jobs/AAAAAAAAAAAAAAAAAAAAAA' }, { status: 404, code: 'not_found' });
  await contract('retry the cancelled job', { method: 'POST', path: `/api/v1/jobs/${cancelId}/retry` }, { status: 202 });
  await contract('retry a queued job', { method: 'POST', path: `/api/v1/jobs/${cancelId}/retry` }, { status: 409, code: 'conflict' });
  await contract('retry no such job', { method: 'POST', path: '/api/v1/jobs/AAAAAAAAAAAAAAAAAAAAAA/retry' }, { status: 404, code: 'not_found' });

  // Events: bad parameters.
  await contract('an unknown parameter', { path: '/api/v1/events?colour=red' }, { status: 400, code: 'invalid_option' });
  await outOfContract('last_event_id=abc', () => ({ path: '/api/v1/events?last_event_id=abc' }), /^request\.query\.last_event_id$/, { status: 400, code: 'invalid_option' });
  await outOfContract('job=short', () => ({ path: '/api/v1/events?job=short' }), /^request\.query\.job$/, { status: 400, code: 'invalid_option' });

  // Thumbnails that are not there.
  await contract('no such thumbnail', { path: '/thumbs/AAAAAAAAAAAAAAAAAAAAAA/thumb_1x1.jpg' }, { status: 404, code: 'not_found' });
  await contract('a waiting job has no thumbnail yet', { path: `/thumbs/${jobA}/thumb_256x171.jpg` }, { status: 404, code: 'not_found' });
  await outOfContract('a name that is not an output\'s', () => ({ path: `/thumbs/${jobA}/quickthumb.db` }), /^request\.path\.file$/, { status: 404, code: 'not_found' });

  // Outside the spec (Prism answers these itself): the documented error JSON, directly.
  const nowhere = await direct('an unknown path', { path: '/no/such/page' }, { status: 404, code: 'not_found' });
  check(isErrorJson(nowhere), 'the unknown path\'s 404 is the error JSON', nowhere?.text);
  const wrongMethod = await direct('another method on a path', { method: 'DELETE', path: '/healthz' }, { status: 405, code: 'method_not_allowed' });
  check(isErrorJson(wrongMethod) && /GET/.test(wrongMethod?.headers.get('allow') || ''), 'the 405 is the error JSON with Allow', wrongMethod?.text);
  const traversal = await direct('a path out of the thumbnails', { path: '/thumbs/..%2f..%2fquickthumb.db/x' }, { status: 404, code: 'not_found' });
  check(isErrorJson(traversal), 'its 404 is the error JSON', traversal?.text);

  // One event stream through Prism, ended by a SIGTERM: Prism checks the whole answer.
  const from = strict.log.length;
  const through = send(strict.url, { path: `/api/v1/events?job=${cancelId}` }).catch((e) => e);
  await prismLogged(strict, from, /Forwarding "get" request to .*\/api\/v1\/events/i, 10000);
  await contract('a change the stream shows (cancel the retried job)', { method: 'DELETE', path: `/api/v1/jobs/${cancelId}` });
  await stopProcess(service, 'SIGTERM');
  const sse = await through;
  if (sse instanceof Error) throw new Error('GET /api/v1/events through Prism failed: ' + sse.message);
  const sseComplaints = prismComplaints(sse);
  const sseJobs = sseEvents(sse.text).filter((e) => e.event === 'job').map((e) => JSON.parse(e.data));
  if (sseComplaints.length) fail('GET /api/v1/events through Prism', sseComplaints.join('\n'));
  else check(sse.status === 200 && /^text\/event-stream/.test(sse.type) && /event: reconnect\ndata: \{"reason":"shutting down"\}/.test(sse.text) &&
    sseJobs.some((j) => j.id === cancelId && j.state === 'cancelled'),
  'GET /api/v1/events through Prism, ended by SIGTERM: 200 text/event-stream with the change and `event: reconnect`, no violation', sse.text.slice(0, 600));

  // Phase 2: the same data with a worker; the waiting jobs run.
  service = await startService(data, servicePort, ['--workers', '1']);
  await eventually('the service behind Prism', 30000, async () => (await send(strict.url, { path: '/readyz' })).status === 200);
  const a = await waitFinal(jobA);
  check(a.state === 'succeeded' && a.outputs.length === 1 && a.source.format === 'bmp', 'the first job succeeded', JSON.stringify(a));
  const finals = {};
  for (const j of [...(two?.json?.jobs || []), withForm?.json, withQuery?.json, png?.json, raw?.json, keyed?.json, broken?.json, jpegMultipart?.json, jpegRaw?.json])
    if (j && j.id) finals[j.id] = await waitFinal(j.id);
  const f = finals[withForm?.json?.id];
  check(f?.state === 'succeeded' && f.outputs.length === 4 && f.outputs.every((o) => o.name.endsWith('.webp')), 'four WebP outputs', JSON.stringify(f));
  const b = finals[broken?.json?.id];
  check(b?.state === 'failed' && b.error && b.attempts === 1, 'the broken GIF\'s job failed, with its error', JSON.stringify(b));
  check(finals[jpegMultipart?.json?.id]?.state === 'succeeded' && finals[jpegRaw?.json?.id]?.state === 'succeeded',
    'the JPEGs uploaded directly succeeded', JSON.stringify([finals[jpegMultipart?.json?.id], finals[jpegRaw?.json?.id]]));

  // Thumbnails: status and headers through Prism, the bytes directly.
  for (const [job, type, magic] of [[a, 'image/jpeg', 'ffd8ff'], [finals[png?.json?.id], 'image/png', '89504e47'], [f, 'image/webp', '52494646']]) {
    if (!job || !job.outputs?.length) continue;
    const out = job.outputs[0];
    const r = await contract(`a ${type} thumbnail`, { path: out.url });
    check(r?.type === type && r.headers.get('etag') && /immutable/.test(r.headers.get('cache-control') || ''),
      `${type}: Content-Type, ETag and Cache-Control`, r ? `${r.type} ${r.headers.get('etag')} ${r.headers.get('cache-control')}` : '');
    const d = await direct(`the ${type} thumbnail's bytes`, { path: out.url });
    check(d?.bytes.length === out.bytes && d.bytes.subarray(0, 4).toString('hex').startsWith(magic),
      `directly, the ${type} thumbnail is ${out.bytes} bytes of ${type}`, `${d?.bytes.length} bytes, ${d?.bytes.subarray(0, 4).toString('hex')}`);
    await contract(`a ${type} thumbnail's headers`, { method: 'HEAD', path: out.url });
    await contract(`a ${type} thumbnail not modified`, { path: out.url, headers: { 'If-None-Match': r?.headers.get('etag') || '""' } }, { status: 304 });
  }
  const jpegJob = finals[jpegMultipart?.json?.id];
  if (jpegJob?.outputs?.length) {
    const d = await direct('the real JPEG\'s thumbnail', { path: jpegJob.outputs[0].url });
    check(d?.bytes.length === jpegJob.outputs[0].bytes && d.bytes[0] === 0xff && d.bytes[1] === 0xd8, 'it is the JPEG its job names');
  }

  await contract('cancel a succeeded job', { method: 'DELETE', path: `/api/v1/jobs/${jobA}` }, { status: 409, code: 'conflict' });
  await contract('retry a succeeded job', { method: 'POST', path: `/api/v1/jobs/${jobA}/retry` }, { status: 409, code: 'conflict' });
  if (b) {
    const again = await contract('retry a failed job', { method: 'POST', path: `/api/v1/jobs/${b.id}/retry` }, { status: 202 });
    check(again?.json?.state === 'queued' && again.json.attempts === 0, 'it is queued again with fresh attempts', again?.text);
    await waitFinal(b.id);
  }
  await contract('list the succeeded', { path: '/api/v1/jobs?state=succeeded&limit=100' });
  await contract('list the failed', { path: '/api/v1/jobs?state=failed' });
  await contract('list the cancelled', { path: '/api/v1/jobs?state=cancelled' });
  await contract('list all', { path: '/api/v1/jobs?limit=100' });
  await contract('readiness after work', { path: '/readyz' });
  await contract('metrics after work', { path: '/metrics' });
  await stopProcess(service, 'SIGTERM');

  // Phase 3: with an API token and a metrics token, the 401s.
  service = await startService(data, servicePort, ['--workers', '0', '--api-token', 'contract-token', '--metrics-token', 'metrics-token']);
  await eventually('the service behind Prism', 30000, async () => (await send(strict.url, { path: '/healthz' })).status === 200);
  const noToken = await contract('no token', { path: '/api/v1/jobs' }, { status: 401, code: 'unauthorized' });
  check(/^Bearer/.test(noToken?.headers.get('www-authenticate') || ''), 'the 401 has WWW-Authenticate', noToken?.headers.get('www-authenticate'));
  await contract('a wrong token', { path: '/api/v1/jobs', headers: { Authorization: 'Bearer not-it' } }, { status: 401, code: 'unauthorized' });
  await contract('the token', { path: '/api/v1/jobs?limit=1', headers: { Authorization: 'Bearer contract-token' } });
  await contract('an upload without the token', { method: 'POST', path: '/api/v1/jobs', body: form([bmp()]) }, { status: 401, code: 'unauthorized' });
  await contract('an upload with the token', { method: 'POST', path: '/api/v1/jobs', headers: { Authorization: 'Bearer contract-token' }, body: form([bmp()]) }, { status: 202 });
  await contract('a wrong access_token', { path: '/api/v1/events?access_token=bad' }, { status: 401, code: 'unauthorized' });
  await contract('metrics without their token', { path: '/metrics' }, { status: 401, code: 'unauthorized' });
  await contract('metrics with their token', { path: '/metrics', headers: { Authorization: 'Bearer metrics-token' } });
  await contract('health stays open', { path: '/healthz' });
  await contract('thumbnails stay open', { path: a.outputs[0].url });
  await stopProcess(service, 'SIGTERM');

  // Phase 4: small limits, for the refusals decided from the header alone.
  service = await startService(data, servicePort, ['--workers', '0', '--max-upload', '4K', '--max-backlog', '2']);
  await eventually('the service behind Prism', 30000, async () => (await send(strict.url, { path: '/healthz' })).status === 200);
  await contract('an upload over --max-upload', { method: 'POST', path: '/api/v1/jobs?filename=big.bmp', headers: { 'Content-Type': 'image/bmp' }, body: BMP },
    { status: 413, code: 'payload_too_large' });
  // One job waits since phase 3; one more fills the backlog of 2.
  await contract('an upload that fills the backlog', { method: 'POST', path: '/api/v1/jobs', body: form([['file', 'small.gif', 'image/gif', BROKEN_GIF]]) },
    { status: 202 });
  const full = await contract('an upload past --max-backlog', { method: 'POST', path: '/api/v1/jobs', body: form([['file', 'small.gif', 'image/gif', BROKEN_GIF]]) },
    { status: 429, code: 'backlog_full' });
  check(/^[0-9]+$/.test(full?.headers.get('retry-after') || ''), 'the 429 has Retry-After', full?.headers.get('retry-after'));
} catch (e) {
  fail('the run', e && e.stack ? e.stack : String(e));
} finally {
  await Promise.all([stopProcess(service, 'SIGKILL'), stopProcess(strict, 'SIGTERM'), stopProcess(lenient, 'SIGTERM')]);
  if (failures.length) {
    if (service) console.log('# quickthumb\'s last output:\n' + service.output().split('\n').slice(-30).join('\n'));
    if (strict) console.log('# prism --errors, last lines:\n' + strict.log.split('\n').slice(-40).join('\n'));
  }
  if (process.env.QT_CONTRACT_LOGS) {
    mkdirSync(process.env.QT_CONTRACT_LOGS, { recursive: true });
    if (strict) writeFileSync(join(process.env.QT_CONTRACT_LOGS, 'prism-errors.log'), strict.log);
    if (lenient) writeFileSync(join(process.env.QT_CONTRACT_LOGS, 'prism-lenient.log'), lenient.log);
  }
  rmSync(work, { recursive: true, force: true });
}
console.log(`contract: ${passed} passed, ${failures.length} failed (${((Date.now() - started) / 1000).toFixed(1)} s)`);
if (failures.length) {
  console.log('FAILED:\n  ' + failures.join('\n  '));
  process.exitCode = 1;
} else {
  console.log('PASSED');
}
