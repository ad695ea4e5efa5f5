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
// The machinery (the processes, requests, the three kinds of check, the images, the tally) is in
// support.mjs; this file holds the cases.
import {
  setup, startService, startPrism, stopProcess, prismLogged, eventually, freePort, finish,
  checks, send, form, bmp, prismComplaints, sseEvents, isErrorJson, check, fail,
  PHOTO_JPG, BMP, BMP2, BROKEN_GIF, TIFF,
} from './support.mjs';

const { binary, spec, prismVersion, work, data } = setup(process.argv);
let service, strict, lenient;
try {
  const [servicePort, strictPort, lenientPort] = await Promise.all([freePort(), freePort(), freePort()]);
  const serviceUrl = `http://127.0.0.1:${servicePort}`;
  // Phase 1: no workers, so every job waits and can be cancelled and retried for certain.
  service = await startService(binary, data, servicePort, ['--workers', '0']);
  [strict, lenient] = await Promise.all([
    startPrism(spec, strictPort, servicePort, ['--errors']),
    startPrism(spec, lenientPort, servicePort, []),
  ]);
  const { contract, outOfContract, direct, readEvents, waitFinal } =
    checks({ strict: strict.url, lenient: lenient.url, service: serviceUrl });
  console.log(`# prism ${prismVersion}: ${strict.url} (--errors) and ${lenient.url} in front of quickthumb at ${serviceUrl}; ${spec}`);

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
  service = await startService(binary, data, servicePort, ['--workers', '1']);
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
  service = await startService(binary, data, servicePort, ['--workers', '0', '--api-token', 'contract-token', '--metrics-token', 'metrics-token']);
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
  service = await startService(binary, data, servicePort, ['--workers', '0', '--max-upload', '4K', '--max-backlog', '2']);
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
  await finish({ service, strict, lenient, work });
}
