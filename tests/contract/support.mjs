// The contract test's machinery; contract_test.mjs holds the cases, and at its top why they are
// shaped as they are (what Prism cannot carry). Here: the pinned Prism and the description to
// check against, the test images (made here, so the test needs no files from elsewhere), the
// service binary and the Prisms as child processes, requests and what Prism said about them, the
// three kinds of check (through the --errors Prism, out of contract through both, direct), and
// the tally of checks with its report.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, existsSync, mkdirSync, writeFileSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import http from 'node:http';
import net from 'node:net';

const here = dirname(fileURLToPath(import.meta.url));
const PRISM = join(here, 'node_modules', '.bin', 'prism');

// ---- the tally ----

const tally = { passed: 0, failures: [], started: Date.now() };
export function ok(what) { tally.passed++; console.log('ok - ' + what); }
export function fail(what, why) {
  tally.failures.push(what);
  console.log('not ok - ' + what + '\n    ' + String(why).split('\n').join('\n    '));
}
export function check(cond, what, why = '') { if (cond) ok(what); else fail(what, why); return cond; }

// ---- setup ----

// The binary (argv[2]), the description (QT_CONTRACT_SPEC or web/openapi.json) and the installed
// Prism's version; exits 2 if the binary is not named or Prism is missing or not the pinned one.
export function setup(argv) {
  const binary = argv[2];
  if (!binary) {
    console.error('usage: node contract_test.mjs QUICKTHUMB_BINARY');
    process.exit(2);
  }
  const spec = process.env.QT_CONTRACT_SPEC || join(here, '..', '..', 'web', 'openapi.json');
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
  tally.started = Date.now();
  const work = mkdtempSync(join(tmpdir(), 'qt-contract-'));
  return { binary, spec, prismVersion: installed, work, data: join(work, 'data') };
}

// ---- images ----

// A 96x64 baseline JPEG (a gradient with a checker pattern), 763 bytes.
export const PHOTO_JPG = Buffer.from(
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
export const BMP = asciiBmp(64, 40, 40);
export const BMP2 = asciiBmp(40, 64, 100);
// A GIF header with no image in it: sniffed as a GIF, accepted, and failed by the worker.
export const BROKEN_GIF = Buffer.from('GIF89a\x10\x00\x10\x00\x00\x00\x00;', 'latin1');
// The start of a little-endian TIFF: refused at upload as an unsupported format.
export const TIFF = Buffer.from('II*\x00\x08\x00\x00\x00\x00\x00', 'latin1');

// ---- processes ----

export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => { const { port } = srv.address(); srv.close(() => resolve(port)); });
  });
}

// Starts `binary serve` on `port` and waits for its "listening on" line.
export function startService(binary, dataDir, port, extra) {
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

export function stopProcess(p, signal = 'SIGTERM') {
  return new Promise((resolve) => {
    if (!p || p.exited || p.child.exitCode !== null || p.child.signalCode !== null) return resolve();
    p.child.removeAllListeners('exit');
    p.child.once('exit', (code, sig) => { p.exited = true; resolve(code ?? sig); });
    p.child.kill(signal);
  });
}

// Starts Prism from node_modules/.bin, proxying to the service on `upstreamPort` and checking
// against `spec`, and waits for "Prism is listening".
export function startPrism(spec, port, upstreamPort, flags) {
  return new Promise((resolve, reject) => {
    const args = ['proxy', spec, `http://127.0.0.1:${upstreamPort}`, ...flags, '-p', String(port), '-h', '127.0.0.1'];
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
export function prismLogged(prism, from, re, ms) {
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
export async function eventually(what, ms, fn) {
  const until = Date.now() + ms;
  let last;
  for (;;) {
    try { last = await fn(); } catch (e) { last = e; }
    if (last && !(last instanceof Error)) return last;
    if (Date.now() > until) throw new Error(`${what}: not done within ${ms} ms (last: ${last instanceof Error ? last.message : JSON.stringify(last)})`);
    await new Promise((r) => setTimeout(r, 50));  // the poll's pace, not a wait for something
  }
}

// Stops what is still running, shows the last output if anything failed, keeps both Prisms' logs
// in QT_CONTRACT_LOGS if it is set, removes the work directory, and reports the tally (exit code 1
// if a check failed).
export async function finish({ service, strict, lenient, work }) {
  await Promise.all([stopProcess(service, 'SIGKILL'), stopProcess(strict, 'SIGTERM'), stopProcess(lenient, 'SIGTERM')]);
  const { passed, failures, started } = tally;
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
  console.log(`contract: ${passed} passed, ${failures.length} failed (${((Date.now() - started) / 1000).toFixed(1)} s)`);
  if (failures.length) {
    console.log('FAILED:\n  ' + failures.join('\n  '));
    process.exitCode = 1;
  } else {
    console.log('PASSED');
  }
}

// ---- requests ----

// A multipart body: `files` as [field, filename, type, bytes], `fields` as [name, value].
export function form(files, fields = []) {
  const f = new FormData();
  for (const [name, value] of fields) f.append(name, value);
  for (const [field, filename, type, bytes] of files) f.append(field, new Blob([bytes], { type }), filename);
  return f;
}

// A `file` part of a BMP, for form().
export const bmp = (name = 'photo.bmp', bytes = BMP) => ['file', name, 'image/bmp', bytes];

export async function send(base, req) {
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
export function prismComplaints(r) {
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

// The documented error JSON, for answers Prism cannot check: {"error": {"code", "message"}} and nothing else.
export function isErrorJson(r) {
  return !!(r && r.json && Object.keys(r.json).length === 1 && r.json.error && Object.keys(r.json.error).sort().join() === 'code,message' &&
    typeof r.json.error.code === 'string' && typeof r.json.error.message === 'string');
}

// Event blocks of an SSE text: [{id, event, data}].
export function sseEvents(text) {
  return text.split('\n\n').filter((b) => b.trim() && !b.startsWith(':')).map((b) => {
    const e = {};
    for (const line of b.split('\n')) {
      const at = line.indexOf(':');
      if (at > 0) e[line.slice(0, at)] = line.slice(at + 1).replace(/^ /, '');
    }
    return e;
  });
}

// ---- checks ----

const FINAL = ['succeeded', 'failed', 'cancelled'];

// The checks, given the --errors Prism's, the lenient Prism's and the service's base URLs.
export function checks({ strict, lenient, service }) {
  // Through the --errors Prism: no violation of any kind, and the expected status (and error code).
  async function contract(what, req, expect = {}) {
    const name = `${describe(req)}: ${what}`;
    let r;
    try { r = await send(strict, req); } catch (e) { fail(name, 'request failed: ' + e.message); return null; }
    const complaints = prismComplaints(r);
    const statuses = [].concat(expect.status ?? 200);
    if (complaints.length) {
      fail(name, complaints.join('\n'));
    } else if (!statuses.includes(r.status)) {
      fail(name, `status ${r.status}, expected ${statuses.join(' or ')}: ${r.text.slice(0, 500)}`);
    } else if (expect.code && errorCode(r) !== expect.code) {
      fail(name, `error code ${errorCode(r)}, expected ${expect.code}: ${r.text.slice(0, 500)}`);
    } else if (expect.quiet) {
      tally.passed++;
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
    const refused = await send(strict, req());
    const named = refused.status === 422 && refused.json && (refused.json.validation || []).some((v) =>
      where.test(['request', ...(v.location || [])].join('.')));
    if (!named) fail(`${name}: the spec rules it out`, `expected Prism's 422 naming ${where}, got ${refused.status}: ${refused.text.slice(0, 500)}`);
    const r = await send(lenient, req());
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
    try { r = await send(service, req); } catch (e) { fail(name, 'request failed: ' + e.message); return null; }
    const statuses = [].concat(expect.status ?? 200);
    if (!statuses.includes(r.status)) fail(name, `status ${r.status}, expected ${statuses.join(' or ')}: ${r.text.slice(0, 500)}`);
    else if (expect.code && errorCode(r) !== expect.code) fail(name, `error code ${errorCode(r)}, expected ${expect.code}: ${r.text.slice(0, 300)}`);
    else ok(`${name} -> ${r.status}${errorCode(r) ? ' ' + errorCode(r) : ''}`);
    return r;
  }

  // Reads an event stream straight from the service until `enough(text)`, then closes it.
  function readEvents(path, enough, ms, onOpen) {
    return new Promise((resolve, reject) => {
      let text = '';
      const req = http.get(service + path, { headers: { Accept: 'text/event-stream' } }, (res) => {
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

  return { contract, outOfContract, direct, readEvents, waitFinal };
}
