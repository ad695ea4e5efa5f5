// quickthumb web page: upload images and watch their jobs.
// No dependencies, no build step. Job data is user input: it only ever reaches the DOM via textContent
// and attributes set from checked values, never via innerHTML.
'use strict';

(function () {
  const API_JOBS = 'api/v1/jobs';
  const POLL_MS = 1000;
  const POLL_MAX_BACKOFF_MS = 15000;
  const LIST_LIMIT = 50;
  const OPTION_FIELDS = ['sizes', 'fit', 'format', 'quality', 'background', 'enlarge', 'progressive'];
  const DEFAULT_BACKGROUND = '#ffffff';
  const PREVIEW_PX = 120;
  const STATES = ['queued', 'processing', 'succeeded', 'failed', 'cancelled'];

  const $ = (id) => document.getElementById(id);
  const form = $('upload-form');
  const fileInput = $('file-input');
  const dropZone = $('drop-zone');
  const selectedText = $('selected-files');
  const uploadButton = $('upload-button');
  const clearButton = $('clear-button');
  const uploadStatus = $('upload-status');
  const uploadError = $('upload-error');
  const jobList = $('job-list');
  const jobsEmpty = $('jobs-empty');
  const pollStatus = $('poll-status');
  const pollText = $('poll-text');
  const template = $('job-template');
  const tokenCard = $('token-card');
  const tokenForm = $('token-form');
  const tokenInput = $('token-input');
  const tokenMessage = $('token-message');
  const tokenError = $('token-error');
  const forgetButton = $('forget-token');

  /** Files chosen by the picker or dropped, in the order they came. */
  let selectedFiles = [];
  /** id -> { el, refs, sig, outputsSig } */
  const rendered = new Map();

  // ---------- small helpers ----------

  function formatBytes(n) {
    if (typeof n !== 'number' || !isFinite(n) || n < 0) return '';
    if (n < 1024) return n + ' B';
    const units = ['KB', 'MB', 'GB', 'TB'];
    let v = n;
    let i = -1;
    do { v /= 1024; i++; } while (v >= 1024 && i < units.length - 1);
    return (v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2)) + ' ' + units[i];
  }

  function isPositiveInt(n) {
    return typeof n === 'number' && Number.isInteger(n) && n > 0;
  }

  function dims(w, h) {
    return isPositiveInt(w) && isPositiveInt(h) ? w + '×' + h : '';
  }

  function formatTime(iso) {
    if (typeof iso !== 'string') return '';
    const d = new Date(iso);
    if (isNaN(d.getTime())) return '';
    const sameDay = d.toDateString() === new Date().toDateString();
    return sameDay
      ? d.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', second: '2-digit' })
      : d.toLocaleString([], { dateStyle: 'medium', timeStyle: 'short' });
  }

  /** Only same-origin absolute paths are used as URLs ("/thumbs/..."), never "//host" or "javascript:". */
  function safePath(url) {
    return typeof url === 'string' && url.startsWith('/') && !url.startsWith('//') && !url.includes('\\')
      ? url : null;
  }

  function str(v) {
    return typeof v === 'string' ? v : (v === null || v === undefined ? '' : String(v));
  }

  function show(el, on) {
    el.hidden = !on;
  }

  // ---------- access token ----------
  // A service started with --api-token answers 401 to every API call without it. The token is asked
  // for once (on the first 401), kept in localStorage, and sent as "Authorization: Bearer" (and as
  // ?access_token= on the event stream: EventSource cannot send headers).

  const TOKEN_KEY = 'quickthumb.token';
  let token = '';
  try { token = localStorage.getItem(TOKEN_KEY) || ''; } catch (_) { token = ''; }

  /** Request headers with the token when there is one. */
  function withAuth(headers) {
    const out = Object.assign({}, headers);
    if (token) out.Authorization = 'Bearer ' + token;
    return out;
  }

  function showForget() {
    show(forgetButton, token !== '');
  }

  /** A 401 to a request sent with `sent`: ask for a token; say so plainly when the one sent was refused.
   *  An answer to an older token (one entered since is on its way) is ignored. */
  function needToken(sent) {
    if (sent !== token) { pollSoon(0); return; }
    const refused = token !== '';
    tokenMessage.textContent = 'This service needs an access token. Ask whoever runs it.';
    tokenError.textContent = refused ? 'The access token was not accepted. Check it and enter it again.' : '';
    show(tokenError, refused);
    const wasHidden = tokenCard.hidden;
    show(tokenCard, true);
    if (wasHidden) tokenInput.focus();
    setPollStatus('error', 'Access token needed');
  }

  function setToken(value) {
    token = value;
    try {
      if (token) localStorage.setItem(TOKEN_KEY, token);
      else localStorage.removeItem(TOKEN_KEY);
    } catch (_) { /* private mode: kept for this page only */ }
    showForget();
  }

  tokenForm.addEventListener('submit', (e) => {
    e.preventDefault();
    const value = tokenInput.value.trim();
    if (!value) { tokenInput.focus(); return; }
    setToken(value);
    tokenInput.value = '';
    show(tokenCard, false);
    show(tokenError, false);
    connectEvents();
    pollSoon(0);
  });

  forgetButton.addEventListener('click', () => {
    setToken('');
    connectEvents();
    pollSoon(0);
  });
  showForget();

  // ---------- file selection and drag & drop ----------

  function isImage(file) {
    // Some platforms report an empty type; let the server decide for those.
    return !file.type || file.type.startsWith('image/');
  }

  function setFiles(files) {
    const all = Array.from(files);
    // The server sniffs the bytes and answers each file with a readable reason; the page does
    // not guess from the browser's type, it only says which ones do not look like images.
    selectedFiles = all;
    const skipped = all.filter((f) => !isImage(f)).length;
    if (selectedFiles.length === 0) {
      selectedText.textContent = skipped ? 'Those were not images. No files selected.' : 'No files selected.';
    } else {
      const total = selectedFiles.reduce((s, f) => s + f.size, 0);
      const names = selectedFiles.length <= 3
        ? selectedFiles.map((f) => f.name).join(', ')
        : selectedFiles.slice(0, 3).map((f) => f.name).join(', ') + ' and ' + (selectedFiles.length - 3) + ' more';
      selectedText.textContent = selectedFiles.length + (selectedFiles.length === 1 ? ' file' : ' files') +
        ' (' + formatBytes(total) + '): ' + names + (skipped ? ' — ' + skipped + ' may not be an image' : '');
    }
    dropZone.classList.toggle('has-files', selectedFiles.length > 0);
    hideError();
  }

  fileInput.addEventListener('change', () => setFiles(fileInput.files || []));

  let dragDepth = 0;
  dropZone.addEventListener('dragenter', (e) => {
    e.preventDefault();
    dragDepth++;
    dropZone.classList.add('dragging');
  });
  dropZone.addEventListener('dragover', (e) => {
    e.preventDefault();
    if (e.dataTransfer) e.dataTransfer.dropEffect = 'copy';
  });
  dropZone.addEventListener('dragleave', () => {
    dragDepth = Math.max(0, dragDepth - 1);
    if (dragDepth === 0) dropZone.classList.remove('dragging');
  });
  dropZone.addEventListener('drop', (e) => {
    e.preventDefault();
    dragDepth = 0;
    dropZone.classList.remove('dragging');
    if (e.dataTransfer && e.dataTransfer.files && e.dataTransfer.files.length) {
      fileInput.value = '';
      setFiles(e.dataTransfer.files);
    }
  });
  // A file dropped next to the zone would make the browser navigate away to it.
  window.addEventListener('dragover', (e) => e.preventDefault());
  window.addEventListener('drop', (e) => e.preventDefault());

  clearButton.addEventListener('click', () => {
    form.reset();
    fileInput.value = '';
    setFiles([]);
    hideStatus();
  });

  // ---------- upload ----------

  function showError(msg) {
    uploadError.textContent = msg;
    show(uploadError, true);
  }
  function hideError() {
    uploadError.textContent = '';
    show(uploadError, false);
  }
  function showStatus(msg) {
    uploadStatus.textContent = msg;
    show(uploadStatus, true);
  }
  function hideStatus() {
    uploadStatus.textContent = '';
    show(uploadStatus, false);
  }

  /** Reads {"error":{"code","message"}} from a failed response, falling back to the status line. */
  async function errorMessage(res) {
    let text = '';
    try { text = await res.text(); } catch (_) { /* ignore */ }
    let msg = '';
    try {
      const body = JSON.parse(text);
      if (body && body.error) {
        msg = str(body.error.message) || str(body.error.code);
        if (body.error.code && body.error.message) msg += ' (' + str(body.error.code) + ')';
      }
    } catch (_) { /* not JSON */ }
    if (!msg) msg = text.trim().slice(0, 300) || res.statusText || 'request failed';
    let out = 'Upload failed: ' + msg + ' [HTTP ' + res.status + ']';
    const retry = res.headers.get('Retry-After');
    if (retry) out += ' — try again in ' + retry + ' s';
    return out;
  }

  /** The value to send for an option input, or '' to leave it to the server's default. */
  function optionValue(input) {
    if (!input) return '';
    if (input.type === 'checkbox') return input.checked ? 'true' : '';
    const value = input.value.trim();
    if (input.type === 'color') return value.toLowerCase() === DEFAULT_BACKGROUND ? '' : value;
    return value;
  }

  // ---------- options remembered between visits ----------

  const OPTIONS_KEY = 'quickthumb.options';
  function saveOptions() {
    const saved = {};
    for (const name of OPTION_FIELDS) {
      const input = form.elements.namedItem(name);
      if (!input) continue;
      saved[name] = input.type === 'checkbox' ? input.checked : input.value;
    }
    try { localStorage.setItem(OPTIONS_KEY, JSON.stringify(saved)); } catch (_) { /* private mode */ }
  }
  function restoreOptions() {
    let saved = null;
    try { saved = JSON.parse(localStorage.getItem(OPTIONS_KEY) || 'null'); } catch (_) { saved = null; }
    if (!saved || typeof saved !== 'object') return;
    for (const name of OPTION_FIELDS) {
      const input = form.elements.namedItem(name);
      if (!input || !(name in saved)) continue;
      if (input.type === 'checkbox') input.checked = saved[name] === true;
      else if (typeof saved[name] === 'string') input.value = saved[name];
    }
  }
  restoreOptions();
  form.addEventListener('change', saveOptions);

  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    hideError();
    hideStatus();
    if (selectedFiles.length === 0) {
      showError('Choose at least one image first.');
      fileInput.focus();
      return;
    }
    for (const name of OPTION_FIELDS) {
      const input = form.elements.namedItem(name);
      if (input && !input.checkValidity()) {
        input.reportValidity();
        const label = form.querySelector('label[for="' + input.id + '"]');
        showError((label ? label.textContent : name) + ': ' + input.validationMessage);
        input.focus();
        return;
      }
    }

    // One request per file, so that each has its own progress bar and its own answer: a file
    // the server refuses does not take the others down with it.
    const options = [];
    for (const name of OPTION_FIELDS) {
      const value = optionValue(form.elements.namedItem(name));
      if (value !== '') options.push([name, value]);
    }
    const files = selectedFiles.slice();
    fileInput.value = '';
    setFiles([]);
    uploadButton.disabled = true;
    form.setAttribute('aria-busy', 'true');
    showStatus('Uploading ' + files.length + (files.length === 1 ? ' file…' : ' files…'));
    let ok = 0;
    const queue = files.slice();
    const lane = async () => {
      while (queue.length) {
        if (await uploadOne(queue.shift(), options)) ok++;
      }
    };
    await Promise.all([lane(), lane(), lane()]);  // three at a time
    uploadButton.disabled = false;
    form.removeAttribute('aria-busy');
    showStatus('Uploaded ' + ok + ' of ' + files.length + (files.length === 1 ? ' file' : ' files') +
      (ok ? '. Thumbnails appear below as they are made.' : '.'));
  });

  /** Uploads one file with a progress bar in its own row; resolves to whether it was accepted. */
  function uploadOne(file, options) {
    const entry = createJobElement();
    const { el, refs } = entry;
    el.dataset.state = 'uploading';
    refs.name.textContent = file.name || 'untitled';
    refs.name.title = file.name || '';
    refs.badge.textContent = 'uploading';
    refs.badge.className = 'badge badge-queued';
    refs.meta.textContent = formatBytes(file.size);
    refs.progress.value = 0;
    refs.progress.setAttribute('aria-label', 'Upload of ' + (file.name || 'file'));
    refs.progressText.textContent = 'uploading';
    show(refs.progressBox, true);
    show(refs.error, false);
    show(refs.outputs, false);
    el.querySelector('.job-details').hidden = true;  // nothing to detail until it is a job
    jobList.prepend(el);
    updateEmpty();

    const data = new FormData();
    // Options first: a streaming multipart parser knows them before the file bytes arrive.
    for (const [k, v] of options) data.append(k, v);
    data.append('file', file, file.name);
    const sent = token;
    return new Promise((resolve) => {
      const xhr = new XMLHttpRequest();
      xhr.open('POST', API_JOBS);
      xhr.setRequestHeader('Accept', 'application/json');
      if (token) xhr.setRequestHeader('Authorization', 'Bearer ' + token);
      xhr.upload.addEventListener('progress', (e) => {
        if (!e.lengthComputable) return;
        const pct = Math.round((100 * e.loaded) / Math.max(e.total, 1));
        refs.progress.value = pct;
        refs.progressText.textContent = 'uploading ' + pct + '%';
      });
      const fail = (msg) => {
        el.dataset.state = 'failed';
        refs.badge.textContent = 'refused';
        refs.badge.className = 'badge badge-failed';
        show(refs.progressBox, false);
        refs.error.textContent = msg;
        show(refs.error, true);
        resolve(false);
      };
      xhr.addEventListener('load', () => {
        let body = null;
        try { body = JSON.parse(xhr.responseText); } catch (_) { body = null; }
        if (xhr.status !== 202) {
          if (xhr.status === 401) needToken(sent);
          const e = body && body.error ? body.error : null;
          const msg = e ? (str(e.message) || str(e.code)) + (e.code && e.message ? ' (' + str(e.code) + ')' : '')
            : (xhr.statusText || 'request failed');
          const retry = xhr.getResponseHeader('Retry-After');
          fail(msg + ' [HTTP ' + xhr.status + ']' + (retry ? ' — try again in ' + retry + ' s' : ''));
          return;
        }
        const jobs = body && Array.isArray(body.jobs) ? body.jobs : body && body.id ? [body] : [];
        el.remove();
        for (const job of jobs) {
          // An event may have shown it already, maybe in a later state than this answer's
          // (upsertJob keeps the later one); either way it now sits where the upload was.
          const existing = rendered.get(job.id);
          if (existing) jobList.prepend(existing.el);
          upsertJob(job, true);
        }
        updateEmpty();
        resolve(true);
      });
      xhr.addEventListener('error', () => fail('Could not reach the server.'));
      xhr.send(data);
    });
  }

  // ---------- job rendering ----------

  function createJobElement() {
    const el = template.content.firstElementChild.cloneNode(true);
    return {
      el,
      refs: {
        preview: el.querySelector('.job-preview'),
        placeholder: el.querySelector('.job-placeholder'),
        name: el.querySelector('.job-name'),
        badge: el.querySelector('.badge'),
        meta: el.querySelector('.job-meta'),
        progressBox: el.querySelector('.job-progress'),
        progress: el.querySelector('progress'),
        progressText: el.querySelector('.job-progress-text'),
        error: el.querySelector('.job-error'),
        outputs: el.querySelector('.job-outputs'),
        cancel: el.querySelector('.job-cancel'),
        facts: el.querySelector('.job-facts'),
        retry: el.querySelector('.job-retry'),
      },
      sig: '',
      outputsSig: '',
    };
  }

  function jobState(job) {
    return STATES.includes(job.state) ? job.state : 'unknown';
  }

  function renderOutputs(entry, job, name) {
    const outputs = Array.isArray(job.outputs) ? job.outputs : [];
    const usable = outputs.filter((o) => o && safePath(o.url));
    const sig = JSON.stringify(usable.map((o) => [o.url, o.width, o.height, o.bytes, o.name]));
    if (sig === entry.outputsSig) return;
    entry.outputsSig = sig;

    const { preview, placeholder, outputs: list } = entry.refs;
    list.replaceChildren();
    const oldImg = preview.querySelector('img');
    if (usable.length === 0) {
      if (oldImg) oldImg.remove();
      show(placeholder, true);
      show(list, false);
      return;
    }

    // The preview is the smallest output that still fills the preview box (else the largest);
    // every output gets a link with its size.
    const longest = (o) => Math.max(isPositiveInt(o.width) ? o.width : 0, isPositiveInt(o.height) ? o.height : 0);
    const bySize = usable.slice().sort((a, b) => longest(a) - longest(b));
    const first = bySize.find((o) => longest(o) >= PREVIEW_PX) || bySize[bySize.length - 1];
    const firstUrl = safePath(first.url);
    let img = oldImg;
    if (!img) {
      img = document.createElement('img');
      img.decoding = 'async';
      img.loading = 'lazy';
      preview.appendChild(img);
    }
    if (img.getAttribute('src') !== firstUrl) img.setAttribute('src', firstUrl);
    if (isPositiveInt(first.width) && isPositiveInt(first.height)) {
      img.width = first.width;
      img.height = first.height;
    }
    img.alt = 'Thumbnail of ' + name;
    show(placeholder, false);

    for (const o of usable) {
      const li = document.createElement('li');
      const a = document.createElement('a');
      a.href = safePath(o.url);
      a.target = '_blank';
      a.rel = 'noopener';
      a.textContent = str(o.name) || 'thumbnail';
      li.appendChild(a);
      const info = [dims(o.width, o.height), formatBytes(o.bytes)].filter(Boolean).join(' · ');
      if (info) {
        const span = document.createElement('span');
        span.className = 'muted';
        span.textContent = ' ' + info;
        li.appendChild(span);
      }
      list.appendChild(li);
    }
    show(list, true);
  }

  function renderJob(entry, job) {
    const state = jobState(job);
    const src = job.source && typeof job.source === 'object' ? job.source : {};
    const name = str(src.filename) || 'untitled';
    const { el, refs } = entry;

    el.dataset.state = state;
    refs.name.textContent = name;
    refs.name.title = name;
    refs.badge.textContent = state;
    refs.badge.className = 'badge badge-' + state;

    const meta = [];
    if (src.format) meta.push(str(src.format).toUpperCase());
    const d = dims(src.width, src.height);
    if (d) meta.push(d);
    const b = formatBytes(src.bytes);
    if (b) meta.push(b);
    const t = formatTime(job.created_at);
    if (t) meta.push(t);
    if (typeof job.attempts === 'number' && job.attempts > 1) {
      meta.push('attempt ' + job.attempts + (typeof job.max_attempts === 'number' ? '/' + job.max_attempts : ''));
    }
    refs.meta.textContent = meta.join(' · ');

    const progress = typeof job.progress === 'number' && isFinite(job.progress)
      ? Math.max(0, Math.min(100, Math.round(job.progress))) : 0;
    const active = state === 'queued' || state === 'processing';
    show(refs.progressBox, active);
    if (active) {
      if (state === 'queued' && progress === 0) {
        refs.progress.removeAttribute('value'); // indeterminate while waiting
        refs.progressText.textContent = 'waiting';
      } else {
        refs.progress.value = progress;
        refs.progressText.textContent = progress + '%';
      }
      refs.progress.setAttribute('aria-label', 'Progress of ' + name);
    }

    const err = job.error && typeof job.error === 'object' ? job.error : null;
    if (err && (state === 'failed' || state === 'cancelled' || state === 'queued')) {
      const msg = str(err.message) || str(err.code) || 'unknown error';
      refs.error.textContent = (state === 'queued' ? 'Will retry: ' : '') + msg +
        (err.code && err.message ? ' (' + str(err.code) + ')' : '');
      show(refs.error, true);
    } else {
      refs.error.textContent = '';
      show(refs.error, false);
    }

    show(refs.cancel, active);
    show(refs.retry, state === 'failed' || state === 'cancelled');
    refs.cancel.setAttribute('aria-label', 'Cancel ' + name);
    refs.retry.setAttribute('aria-label', 'Retry ' + name);

    renderOutputs(entry, job, name);
    renderFacts(refs.facts, job, src, name);
  }

  /** The details panel: everything the job JSON says, with copyable thumbnail URLs. */
  function renderFacts(dl, job, src, name) {
    dl.replaceChildren();
    const add = (label, value) => {
      if (value === '' || value === null || value === undefined) return null;
      const dt = document.createElement('dt');
      dt.textContent = label;
      const dd = document.createElement('dd');
      if (value instanceof Node) dd.appendChild(value); else dd.textContent = String(value);
      dl.append(dt, dd);
      return dd;
    };
    add('Job id', str(job.id));
    add('File', name);
    add('Source', [str(src.format).toUpperCase(), dims(src.width, src.height), formatBytes(src.bytes)].filter(Boolean).join(' · '));
    add('Created', formatTime(job.created_at));
    add('Updated', formatTime(job.updated_at));
    if (typeof job.attempts === 'number') add('Attempts', job.attempts + (typeof job.max_attempts === 'number' ? ' of ' + job.max_attempts : ''));
    add('Next attempt', formatTime(job.retry_at));
    const err = job.error && typeof job.error === 'object' ? job.error : null;
    if (err) add('Error', str(err.message) + (err.code ? ' (' + str(err.code) + ')' : ''));
    const outputs = Array.isArray(job.outputs) ? job.outputs : [];
    for (const o of outputs) {
      const path = o && safePath(o.url);
      if (!path) continue;
      const wrap = document.createElement('span');
      const a = document.createElement('a');
      a.href = path;
      a.target = '_blank';
      a.rel = 'noopener';
      a.textContent = new URL(path, location.href).href;
      const copy = document.createElement('button');
      copy.type = 'button';
      copy.className = 'copy';
      copy.dataset.url = a.textContent;
      copy.textContent = 'Copy';
      copy.setAttribute('aria-label', 'Copy the URL of ' + str(o.name));
      wrap.append(a, copy, document.createTextNode(' ' + [dims(o.width, o.height), formatBytes(o.bytes)].filter(Boolean).join(' · ')));
      add(str(o.name) || 'Output', wrap);
    }
  }

  /** DELETE (cancel) or POST .../retry; the answer is the job as it is now. */
  async function jobAction(id, action) {
    const url = API_JOBS + '/' + encodeURIComponent(id) + (action === 'retry' ? '/retry' : '');
    const sent = token;
    try {
      const res = await fetch(url, { method: action === 'retry' ? 'POST' : 'DELETE', headers: withAuth({ Accept: 'application/json' }) });
      if (res.status === 401) needToken(sent);
      if (!res.ok) {
        showError((await errorMessage(res)).replace('Upload failed', action === 'retry' ? 'Retry failed' : 'Cancel failed'));
        return;
      }
      upsertJob(await res.json(), false);
    } catch (err) {
      showError('Could not reach the server (' + str(err && err.message) + ').');
    }
  }

  jobList.addEventListener('click', (e) => {
    const button = e.target instanceof Element ? e.target.closest('button') : null;
    const li = button ? button.closest('li.job') : null;
    if (button && button.classList.contains('copy')) {
      const url = button.dataset.url || '';
      const done = () => { button.textContent = 'Copied'; setTimeout(() => { button.textContent = 'Copy'; }, 1500); };
      if (navigator.clipboard && navigator.clipboard.writeText) navigator.clipboard.writeText(url).then(done, () => {});
      return;
    }
    if (!li || !li.dataset.id) return;
    if (button.classList.contains('job-cancel')) jobAction(li.dataset.id, 'cancel');
    else if (button.classList.contains('job-retry')) jobAction(li.dataset.id, 'retry');
  });

  const finalStates = new Set(['succeeded', 'failed', 'cancelled']);
  /**
   * Whether `job` is older than what a row shows. Snapshots arrive by two roads (an upload's or an
   * action's answer, and the event stream), so a fast job's "succeeded" event can come before the
   * 202 that says "queued": the later change wins, and within one millisecond a final state wins.
   */
  function isStale(job, shown) {
    const t = Date.parse(job.updated_at), u = Date.parse(shown.updated_at);
    if (Number.isNaN(t) || Number.isNaN(u) || t > u) return false;
    if (t < u) return true;
    return finalStates.has(shown.state) && !finalStates.has(job.state);
  }

  /** Creates or updates the element of one job; returns its entry. */
  function upsertJob(job, prepend) {
    if (!job || typeof job.id !== 'string' || job.id === '') return null;
    let entry = rendered.get(job.id);
    if (!entry) {
      entry = createJobElement();
      entry.el.dataset.id = job.id;
      rendered.set(job.id, entry);
      if (prepend) jobList.prepend(entry.el);
      else jobList.appendChild(entry.el);
    }
    if (entry.job && isStale(job, entry.job)) return entry;
    entry.job = job;
    const sig = JSON.stringify(job);
    if (sig !== entry.sig) {
      entry.sig = sig;
      renderJob(entry, job);
    }
    return entry;
  }

  /** Makes the list match the server's page: update in place, keep order, drop what is gone. */
  function applyJobList(jobs) {
    const seen = new Set();
    let prev = null;
    for (const job of jobs) {
      const entry = upsertJob(job, false);
      if (!entry) continue;
      seen.add(job.id);
      // Move a node only when it is out of place, so images are not re-laid out for nothing.
      const want = prev ? prev.nextElementSibling : jobList.firstElementChild;
      if (want !== entry.el) jobList.insertBefore(entry.el, want);
      prev = entry.el;
    }
    for (const [id, entry] of rendered) {
      if (!seen.has(id)) {
        entry.el.remove();
        rendered.delete(id);
      }
    }
    updateEmpty();
  }

  function updateEmpty() {
    show(jobsEmpty, rendered.size === 0);
  }

  // ---------- live updates: Server-Sent Events, with the list loaded on start and on a reset ----------

  let listTimer = null;
  let inFlight = false;
  let failures = 0;

  function setPollStatus(kind, text) {
    pollStatus.dataset.kind = kind;
    pollText.textContent = text;
  }

  /** Loads the newest jobs; live events keep them current afterwards. */
  function pollSoon(delay) {
    if (listTimer !== null) clearTimeout(listTimer);
    listTimer = setTimeout(loadList, delay);
  }

  // The list's filter (a job state, or '' for all) and the cursor of the next, older page.
  let filterState = '';
  let nextCursor = null;
  const loadMoreButton = $('load-more');

  function listUrl(cursor) {
    let url = API_JOBS + '?limit=' + LIST_LIMIT;
    if (filterState) url += '&state=' + encodeURIComponent(filterState);
    if (cursor) url += '&cursor=' + encodeURIComponent(cursor);
    return url;
  }

  function setCursor(body) {
    nextCursor = body && typeof body.next_cursor === 'string' ? body.next_cursor : null;
    show(loadMoreButton, nextCursor !== null);
  }

  async function loadList() {
    listTimer = null;
    if (inFlight) return;
    inFlight = true;
    const sent = token;
    try {
      const res = await fetch(listUrl(null), { headers: withAuth({ Accept: 'application/json' }), cache: 'no-store' });
      if (res.status === 401) {
        // No polling until a token is entered: the form's submit polls again.
        needToken(sent);
        return;
      }
      if (!res.ok) throw new Error('HTTP ' + res.status);
      const body = await res.json();
      applyJobList(body && Array.isArray(body.jobs) ? body.jobs : []);
      setCursor(body);
      failures = 0;
    } catch (err) {
      failures++;
      setPollStatus('error', 'Cannot reach the server, retrying…');
      pollSoon(Math.min(POLL_MAX_BACKOFF_MS, POLL_MS * 2 ** Math.min(failures, 4)));
    } finally {
      inFlight = false;
    }
  }

  loadMoreButton.addEventListener('click', async () => {
    if (!nextCursor) return;
    loadMoreButton.disabled = true;
    const sent = token;
    try {
      const res = await fetch(listUrl(nextCursor), { headers: withAuth({ Accept: 'application/json' }), cache: 'no-store' });
      if (res.status === 401) needToken(sent);
      if (!res.ok) throw new Error('HTTP ' + res.status);
      const body = await res.json();
      for (const job of body && Array.isArray(body.jobs) ? body.jobs : []) upsertJob(job, false);
      setCursor(body);
      updateEmpty();
    } catch (err) {
      showError('Could not load older jobs (' + str(err && err.message) + ').');
    } finally {
      loadMoreButton.disabled = false;
    }
  });

  $('job-filters').addEventListener('click', (e) => {
    const button = e.target instanceof Element ? e.target.closest('button.filter') : null;
    if (!button) return;
    filterState = button.dataset.state || '';
    jobList.dataset.filter = filterState;  // rows of uploads not yet jobs show under "All" only
    for (const b of document.querySelectorAll('#job-filters .filter')) b.setAttribute('aria-pressed', String(b === button));
    pollSoon(0);
  });

  let events = null;
  let pollingTimer = null;
  /** (Re)connects the event stream, with the token as it is now. */
  function connectEvents() {
    if (events) { events.close(); events = null; }
    if (typeof EventSource !== 'function') {
      // No live events in this browser: fall back to reloading the list every second.
      if (!pollingTimer) pollingTimer = setInterval(loadList, POLL_MS);
      setPollStatus('live', 'Live (polling)');
      return;
    }
    events = new EventSource('api/v1/events' + (token ? '?access_token=' + encodeURIComponent(token) : ''));
    const source = events;
    events.addEventListener('open', () => setPollStatus('live', 'Live'));
    events.addEventListener('error', () => {
      if (source.readyState !== EventSource.CLOSED) { setPollStatus('error', 'Reconnecting…'); return; }
      // Refused (a 401 closes it for good): the list request says why. Waiting for a token, the
      // form's submit reconnects; otherwise try again in a while.
      if (!tokenCard.hidden) return;
      setPollStatus('error', 'Reconnecting…');
      setTimeout(() => { if (events === source && tokenCard.hidden) { connectEvents(); pollSoon(0); } }, 3000);
    });
    events.addEventListener('job', (e) => {
      let job = null;
      try { job = JSON.parse(e.data); } catch (_) { return; }
      if (!job || typeof job.id !== 'string') return;
      if (filterState && job.state !== filterState) {
        // It left the state this list shows.
        const entry = rendered.get(job.id);
        if (entry) { entry.el.remove(); rendered.delete(job.id); updateEmpty(); }
        return;
      }
      const isNew = !rendered.has(job.id);
      upsertJob(job, isNew);
      updateEmpty();
    });
    // The server no longer has what we missed (we were away too long, or it restarted): reload.
    events.addEventListener('reset', () => pollSoon(0));
  }

  connectEvents();
  pollSoon(0);
})();
