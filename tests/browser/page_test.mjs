// The page in real headless Chromium: cancel a waiting job and retry it, restart the service
// under the page (it reconnects and catches up by itself), upload two images and one text file
// and see two thumbnails and one readable error appear without a reload, with no console errors.
// Then, against a service with --api-token: the page asks for the token, refuses a wrong one
// visibly, keeps the right one and uploads with it. Saves a screenshot.
//   node page_test.mjs QUICKTHUMB_BINARY SCREENSHOT_PATH
import { chromium } from 'playwright-core';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, mkdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { deflateSync } from 'node:zlib';
import net from 'node:net';

const [binary, screenshot] = process.argv.slice(2);
if (!binary || !screenshot) {
  console.error('usage: node page_test.mjs QUICKTHUMB_BINARY SCREENSHOT_PATH');
  process.exit(2);
}
const CHROMIUM = process.env.QT_CHROMIUM || '/usr/bin/chromium';

// ---- a real PNG, made here (a gradient), so the test needs no files from elsewhere ----
function crc32(buf) {
  let c, crc = 0xffffffff;
  for (let n = 0; n < buf.length; n++) {
    c = (crc ^ buf[n]) & 0xff;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    crc = (crc >>> 8) ^ c;
  }
  return (crc ^ 0xffffffff) >>> 0;
}
function chunk(type, data) {
  const len = Buffer.alloc(4); len.writeUInt32BE(data.length);
  const td = Buffer.concat([Buffer.from(type, 'ascii'), data]);
  const crc = Buffer.alloc(4); crc.writeUInt32BE(crc32(td));
  return Buffer.concat([len, td, crc]);
}
function gradientPng(w, h, tint) {
  const raw = Buffer.alloc((w * 3 + 1) * h);
  for (let y = 0; y < h; y++) {
    raw[y * (w * 3 + 1)] = 0;
    for (let x = 0; x < w; x++) {
      const o = y * (w * 3 + 1) + 1 + x * 3;
      raw[o] = (x * 255 / w) | 0; raw[o + 1] = (y * 255 / h) | 0; raw[o + 2] = tint;
    }
  }
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(w, 0); ihdr.writeUInt32BE(h, 4);
  ihdr[8] = 8; ihdr[9] = 2; ihdr[10] = 0; ihdr[11] = 0; ihdr[12] = 0;
  return Buffer.concat([Buffer.from([137, 80, 78, 71, 13, 10, 26, 10]), chunk('IHDR', ihdr),
    chunk('IDAT', deflateSync(raw)), chunk('IEND', Buffer.alloc(0))]);
}

// ---- the service ----
function startServer(dataDir, extra) {
  return new Promise((resolve, reject) => {
    const child = spawn(binary, ['serve', '--port', '0', '--bind', '127.0.0.1', '--data', dataDir, ...extra],
      { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    const timer = setTimeout(() => reject(new Error('no "listening" line in 30 s:\n' + out)), 30000);
    const onData = (d) => {
      out += d.toString();
      const m = out.match(/listening on (http:\/\/[0-9.]+:[0-9]+)/);
      if (m) { clearTimeout(timer); resolve({ child, url: m[1] }); }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.on('exit', (code) => reject(new Error('quickthumb exited with ' + code + ':\n' + out)));
  });
}

function check(cond, what) {
  if (!cond) throw new Error('FAILED: ' + what);
  console.log('ok - ' + what);
}

function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => { const { port } = srv.address(); srv.close(() => resolve(port)); });
  });
}

function stopServer(s) {
  return new Promise((resolve) => {
    s.child.removeAllListeners('exit');
    s.child.once('exit', resolve);
    s.child.kill('SIGTERM');
  });
}

// Runs in the page: the state of the row showing `name`.
const ROW_STATE = `window.rowState = (name) => [...document.querySelectorAll('li.job')].find(
  (li) => li.querySelector('.job-name')?.textContent === name)?.dataset.state;`;

const work = mkdtempSync(join(tmpdir(), 'qt-browser-'));
let server, browser;
try {
  const port = String(await freePort());
  const data = join(work, 'data');
  // First no workers: a job waits, so the page can cancel it for certain and queue it again.
  server = await startServer(data, ['--workers', '0', '--port', port]);

  browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
  const page = await browser.newPage({ viewport: { width: 1100, height: 900 } });
  await page.addInitScript({ content: ROW_STATE });
  const problems = [];
  page.on('console', (m) => {
    // Chromium logs every 4xx answer; the one refusal this test provokes is expected.
    if (m.type() === 'error' && !/status of 415/.test(m.text())) problems.push('console: ' + m.text());
  });
  page.on('pageerror', (e) => problems.push('page error: ' + e.message));

  const res = await page.goto(server.url + '/');
  check(res.status() === 200, 'the page loads');
  const headers = res.headers();
  check((headers['content-security-policy'] || '').includes("default-src 'self'"), 'the page is served with a strict CSP');
  check(headers['x-content-type-options'] === 'nosniff', 'and nosniff');
  await page.waitForSelector('#poll-status[data-kind="live"]', { timeout: 15000 });
  check(true, 'the live event stream connects');

  await page.setInputFiles('#file-input', [{ name: 'dusk.png', mimeType: 'image/png', buffer: gradientPng(800, 600, 90) }]);
  await page.click('#upload-button');
  await page.waitForFunction((n) => !!window.rowState(n), 'dusk.png', { timeout: 15000 });
  const row = page.locator('li.job', { has: page.locator('.job-name', { hasText: 'dusk.png' }) }).first();
  await row.locator('.job-cancel').click();
  await page.waitForFunction((n) => window.rowState(n) === 'cancelled', 'dusk.png', { timeout: 15000 });
  check(true, 'Cancel makes the waiting job cancelled, live');
  await row.locator('.job-retry').click();
  await page.waitForFunction((n) => window.rowState(n) === 'queued', 'dusk.png', { timeout: 15000 });
  check(true, 'Retry queues it again');

  // The service restarts with a worker on the same port: the page reconnects by itself, is told
  // it missed events (a new run), reloads, and sees the retried job finish.
  await stopServer(server);
  server = await startServer(data, ['--workers', '1', '--port', port]);
  await page.waitForFunction((n) => window.rowState(n) === 'succeeded', 'dusk.png', { timeout: 60000 });
  check(true, 'after a restart the page reconnects and the retried job succeeds, without a reload');

  // Two real photos from ../shared/testdata when it is there; generated PNGs otherwise.
  const shared = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'shared', 'testdata', 'images');
  const photo = (rel, name) => {
    try { return { name, mimeType: 'image/jpeg', buffer: readFileSync(join(shared, rel)) }; } catch (_) { return null; }
  };
  let imageA = photo('exif/Landscape_1.jpg', 'landscape.jpg');
  let imageB = photo('photos/320x240.jpg', 'street.jpg');
  if (imageA && imageB) {
    console.log('# uploading two photos from ../shared/testdata');
  } else {
    console.log('# SKIPPED the shared photos (../shared/testdata absent): uploading generated PNGs instead');
    imageA = { name: 'sunrise.png', mimeType: 'image/png', buffer: gradientPng(640, 400, 40) };
    imageB = { name: 'meadow.png', mimeType: 'image/png', buffer: gradientPng(400, 640, 200) };
  }
  const files = [
    imageA,
    imageB,
    { name: 'notes.txt', mimeType: 'text/plain', buffer: Buffer.from('not a picture, just words\n') },
  ];
  await page.setInputFiles('#file-input', files);
  await page.click('#upload-button');
  await page.waitForFunction((names) => names.every((n) => {
    const li = [...document.querySelectorAll('li.job')].find((l) => l.querySelector('.job-name')?.textContent === n);
    const img = li && li.dataset.state === 'succeeded' ? li.querySelector('.job-preview img') : null;
    return img && img.complete && img.naturalWidth > 0;
  }), [imageA.name, imageB.name], { timeout: 60000 });
  check(true, 'two thumbnails appear and load');
  await page.waitForFunction((n) => window.rowState(n) === 'failed', 'notes.txt', { timeout: 15000 });
  const refusal = await page.locator('li.job', { has: page.locator('.job-name', { hasText: 'notes.txt' }) })
    .first().locator('.job-error').textContent();
  check(/not an image/.test(refusal) && /notes\.txt/.test(refusal), 'the text file gets a readable error: "' + refusal + '"');

  // Filters, details and copyable URLs.
  await page.click('#job-filters .filter[data-state="succeeded"]');
  await page.waitForFunction(() => {
    const rows = [...document.querySelectorAll('#job-list li.job')].filter((li) => li.offsetParent !== null);
    return rows.length === 3 && rows.every((li) => li.dataset.state === 'succeeded');
  }, null, { timeout: 15000 });
  check(true, 'the Succeeded filter shows the three succeeded jobs only');
  const first = page.locator('li.job', { has: page.locator('.job-name', { hasText: imageA.name }) }).first();
  await first.locator('.job-details summary').click();
  const facts = await first.locator('.job-facts').innerText();
  check(/Job id/.test(facts) && /\/thumbs\/[A-Za-z0-9_-]{22}\/thumb_\d+x\d+\.jpg/.test(facts) && /Attempts/.test(facts),
    'a job\'s details show its id, attempts and thumbnail URL');
  check(await first.locator('.job-facts .copy').count() === 1, 'each thumbnail URL has a Copy button');
  await page.click('#job-filters .filter[data-state=""]');
  await page.waitForFunction(() => [...document.querySelectorAll('#job-list li.job')].filter((li) => li.offsetParent !== null).length === 4,
    null, { timeout: 15000 });
  check(true, 'All shows the refused upload again');

  // Keyboard: the filters and the details are reachable and work with Enter.
  await page.focus('#job-filters .filter[data-state="failed"]');
  await page.keyboard.press('Enter');
  await page.waitForFunction(() => document.querySelector('#job-filters .filter[data-state="failed"]').getAttribute('aria-pressed') === 'true',
    null, { timeout: 5000 });
  check(true, 'a filter works from the keyboard');
  await page.click('#job-filters .filter[data-state=""]');

  mkdirSync(dirname(screenshot), { recursive: true });
  await page.screenshot({ path: screenshot, fullPage: true });
  console.log('# screenshot: ' + screenshot);
  // A phone-sized screen: nothing wider than the viewport.
  await page.setViewportSize({ width: 390, height: 844 });
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  check(overflow <= 0, 'no horizontal scrolling at 390 px (overflow ' + overflow + ' px)');
  const phone = screenshot.replace(/\.png$/, '') + '-phone.png';
  await page.screenshot({ path: phone, fullPage: true });
  console.log('# screenshot: ' + phone);
  check(problems.length === 0, 'no console errors' + (problems.length ? ': ' + problems.join('; ') : ''));
  await page.close();
  await stopServer(server);
  server = null;

  // A service started with an API token: the page asks for it once, a wrong one is refused with a
  // visible message, the right one is kept and an upload works; Forget asks again.
  server = await startServer(join(work, 'data-token'), ['--workers', '1', '--api-token', 'page-test-token']);
  const locked = await browser.newPage({ viewport: { width: 1100, height: 900 } });
  await locked.addInitScript({ content: ROW_STATE });
  const lockedProblems = [];
  locked.on('console', (m) => {
    // Chromium logs every 4xx answer: the 401s before a token are what this part provokes.
    if (m.type() === 'error' && !/status of 401/.test(m.text())) lockedProblems.push('console: ' + m.text());
  });
  locked.on('pageerror', (e) => lockedProblems.push('page error: ' + e.message));
  await locked.goto(server.url + '/');
  await locked.waitForSelector('#token-card:not([hidden])', { timeout: 15000 });
  check(await locked.locator('#token-input').isVisible(), 'with --api-token the page asks for the token in a form');
  check(await locked.evaluate(() => document.activeElement && document.activeElement.id === 'token-input'),
    'the token field has the focus');
  await locked.fill('#token-input', 'not-the-token');
  await locked.press('#token-input', 'Enter');
  await locked.waitForSelector('#token-error:not([hidden])', { timeout: 15000 });
  const wrong = await locked.locator('#token-error').textContent();
  check(/not accepted/.test(wrong) && await locked.locator('#token-card').isVisible(),
    'a wrong token is refused with a visible message: "' + wrong + '"');
  await locked.fill('#token-input', 'page-test-token');
  await locked.click('#token-button');
  await locked.waitForSelector('#poll-status[data-kind="live"]', { timeout: 15000 });
  check(await locked.locator('#token-card').isHidden(), 'the right token is accepted and the form goes away');
  check(await locked.evaluate(() => localStorage.getItem('quickthumb.token')) === 'page-test-token',
    'the token is kept in localStorage');
  await locked.setInputFiles('#file-input', [{ name: 'locked.png', mimeType: 'image/png', buffer: gradientPng(500, 300, 120) }]);
  await locked.click('#upload-button');
  await locked.waitForFunction((n) => {
    const li = [...document.querySelectorAll('li.job')].find((l) => l.querySelector('.job-name')?.textContent === n);
    const img = li && li.dataset.state === 'succeeded' ? li.querySelector('.job-preview img') : null;
    return img && img.complete && img.naturalWidth > 0;
  }, 'locked.png', { timeout: 60000 });
  check(true, 'with the token an upload succeeds, live over the event stream, and its thumbnail loads');
  await locked.reload();
  await locked.waitForFunction((n) => window.rowState(n) === 'succeeded', 'locked.png', { timeout: 15000 });
  check(await locked.locator('#token-card').isHidden(), 'after a reload the stored token is used without asking');
  await locked.click('#forget-token');
  await locked.waitForSelector('#token-card:not([hidden])', { timeout: 15000 });
  check(await locked.evaluate(() => localStorage.getItem('quickthumb.token')) === null,
    'Forget removes the token and the page asks again');
  check(lockedProblems.length === 0, 'no console errors with a token' + (lockedProblems.length ? ': ' + lockedProblems.join('; ') : ''));
  console.log('PASSED');
} catch (e) {
  console.error(e && e.stack ? e.stack : String(e));
  process.exitCode = 1;
} finally {
  if (browser) await browser.close().catch(() => {});
  if (server) server.child.kill('SIGKILL');
  rmSync(work, { recursive: true, force: true });
}
