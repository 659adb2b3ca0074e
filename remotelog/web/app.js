// rlog's read-only log page: give it a log's name (and the gateway to read
// from), it shows the newest messages, verified in this browser, and keeps
// them current from the server's head events.
import { CID, Gateway, Log, Refused, hex, verifyRecord } from './verify.js';

const WANT = 100; // messages shown at first, and per "older"
const $ = (id) => document.getElementById(id);

// stats are for whoever measures the page (the browser test reads them).
const stats = (window.rlogStats = { shown: {}, events: 0, errors: [] });

let state = null; // the log being shown

function params() {
  const q = new URLSearchParams(location.hash.slice(1) || location.search.slice(1));
  return { name: q.get('name') || '', gateway: q.get('gateway') || location.origin };
}

function setStatus(text, cls = '') {
  const el = $('status');
  el.textContent = text;
  el.className = cls;
}

function setSync(text, cls) {
  const el = $('sync');
  el.textContent = text;
  el.className = cls;
}

function fail(err) {
  const refused = err instanceof Refused;
  stats.errors.push(String(err.message || err));
  setStatus((refused ? 'Refused: ' : 'Error: ') + (err.message || err), 'error');
}

function bodyText(body) {
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(body);
  } catch {
    return 'base64:' + btoa(String.fromCharCode(...body));
  }
}

function row(m) {
  const li = document.createElement('li');
  li.dataset.seq = m.seq;
  li.className = 'msg';
  const t = new Date(Number(m.timestamp) * 1000);
  const when = m.large || isNaN(t) ? '' : t.toISOString().replace('.000Z', 'Z');
  const text = m.large ? '(a large message: not loaded here)' : bodyText(m.body);
  li.innerHTML = '<span class="seq"></span> <span class="id"></span> <span class="time"></span> <span class="body"></span>';
  li.children[0].textContent = m.seq;
  li.children[1].textContent = hex(m.id).slice(0, 16);
  li.children[2].textContent = when;
  li.children[3].textContent = text;
  return li;
}

// messagesOf verifies the payloads of pages' entries from seq from on.
async function messagesOf(gw, pages, from) {
  const out = [];
  for (const pg of pages) {
    pg.entries.forEach((e, k) => {
      if (pg.s + k >= from) out.push(gw.message(pg.s + k, e));
    });
  }
  return Promise.all(out);
}

function render(msgs, where) {
  const list = $('log');
  const frag = document.createDocumentFragment();
  for (const m of msgs) frag.appendChild(row(m));
  if (where === 'top') list.insertBefore(frag, list.firstChild);
  else list.appendChild(frag);
  const now = Date.now();
  for (const m of msgs) stats.shown[m.seq] = now;
}

function describe() {
  const s = state;
  $('summary').textContent = `${s.name}: ${s.last} messages; showing ${s.first}–${s.last}; record sequence ${s.record.sequence}, signature verified, valid until ${s.record.validity}; head ${s.head.cid}; ${s.gw.blocks} blocks verified (${s.gw.bytes} bytes)`;
  $('older').hidden = s.first <= 1;
}

async function open(name, gatewayURL) {
  const t0 = performance.now();
  stats.openedAt = Date.now();
  stats.errors = [];
  if (state?.events) state.events.close();
  if (state?.poll) clearInterval(state.poll);
  state = null;
  for (const id of ['log', 'live', 'summary', 'sync']) $(id).textContent = '';
  setStatus('resolving ' + name + ' …');
  const gw = new Gateway(gatewayURL);
  const record = await gw.record(name);
  const head = await gw.head(record.head);
  if (!head.head) throw new Refused(`the record points at ${record.head}, a sealed page, not a head`);
  const log = new Log(gw, head);
  const from = Math.max(1, head.last - WANT + 1);
  const pages = await log.pagesFrom(from);
  const msgs = await messagesOf(gw, pages, from);
  state = { name, gw, record, head, log, first: from, last: head.last, known: head.last };
  render(msgs, 'bottom');
  stats.firstShownMs = performance.now() - t0;
  setStatus(`read and verified in ${Math.round(stats.firstShownMs)} ms`, 'ok');
  describe();
  setSync('caught up', 'ok');
  listen();
}

// older shows up to WANT messages before the oldest shown.
async function older() {
  const s = state;
  const from = Math.max(1, s.first - WANT);
  // Up to the page or tail piece holding the message before the first
  // shown, found by sequence: the log may have a newer head since, in
  // which that piece is part of a sealed page.
  const all = await s.log.pagesFrom(from, await s.log.firstSlot(s.first - 1));
  const msgs = (await messagesOf(s.gw, all, from)).filter((m) => m.seq < s.first);
  s.first = from;
  render(msgs, 'top');
  describe();
}

// refresh reads the newest record and shows what it adds. A refresh asked
// for while one runs runs again after it: the record it read may be older
// than the event that asked.
let refreshing = null, again = false;
async function refresh() {
  if (refreshing) {
    again = true;
    return refreshing;
  }
  refreshing = (async () => {
    do {
      again = false;
      await readNewest();
    } while (again);
  })();
  try {
    await refreshing;
  } finally {
    refreshing = null;
  }
  showSync();
}

// announced is what the newest head event said: the head's CID, fetched
// beside the record and used only if the verified record names it, and
// the signed record itself (rlog serve sends it), verified as a fetched
// one would be, which saves fetching it.
let announced = null;

async function readNewest() {
  const s = state;
  const ann = announced;
  announced = null;
  let early = null;
  if (ann?.head && ann.head !== s.head.cid.toString()) {
    try {
      early = s.gw.head(CID.parse(ann.head));
      early.catch(() => {}); // judged below, if the record names it
    } catch {
      early = null; // not a CID: ignored
    }
  }
  let record = null;
  if (ann?.record) {
    try {
      record = await verifyRecord(s.name, Uint8Array.from(atob(ann.record), (c) => c.charCodeAt(0)));
      stats.eventRecords = (stats.eventRecords || 0) + 1;
    } catch {
      record = null; // not this log's valid record: read the gateway's
    }
  }
  record ??= await s.gw.record(s.name);
  stats.recordAt = Date.now();
  if (record.sequence < s.record.sequence) throw new Refused(`record sequence ${record.sequence} is older than ${s.record.sequence} (rollback)`);
  if (record.head.equals(s.head.cid)) return;
  const hinted = early && (await early.catch(() => null));
  const head = hinted?.cid.equals(record.head) ? hinted : await s.gw.head(record.head);
  if (!head.head) throw new Refused(`the record points at ${record.head}, a sealed page, not a head`);
  if (head.last < s.last) throw new Refused(`the new head holds ${head.last} messages, fewer than ${s.last} read before (fork)`);
  const from = Math.max(s.last + 1, head.last - WANT + 1);
  // Back to the message shown last, to check it is still there, unless
  // that is more than WANT back (then the newest WANT are shown).
  stats.headAt = Date.now();
  const back = head.last - s.last <= WANT ? s.last : from;
  const log = new Log(s.gw, head);
  const pages = await log.pagesFrom(back);
  let msgs = await messagesOf(s.gw, pages, back);
  // The message shown last must still be there: else the log was rewritten.
  if (back === s.last) {
    const shown = document.querySelector(`#log li[data-seq="${s.last}"] .id`);
    if (shown && shown.textContent !== hex(msgs[0].id).slice(0, 16)) throw new Refused(`message ${s.last} changed (fork): the log was rewritten`);
    msgs = msgs.slice(1);
  }
  if (from > s.last + 1) { // more than WANT new: the newest WANT, after a gap
    const gap = document.createElement('li');
    gap.className = 'gap';
    gap.textContent = `… messages ${s.last + 1}–${from - 1} not shown`;
    $('log').appendChild(gap);
  }
  Object.assign(s, { record, head, log, last: head.last, known: Math.max(s.known, head.last) });
  render(msgs, 'bottom');
  describe();
}

function showSync() {
  const s = state;
  const behind = s.known - s.last;
  if (behind > 0) setSync(`behind by ${behind}`, 'behind');
  else setSync('caught up', 'ok');
}

// listen follows the gateway's head events (rlog serve, rlog keep
// --listen); a gateway without them is polled.
function listen() {
  const s = state;
  const es = new EventSource(`${s.gw.url}/rlog/v1/events?name=${encodeURIComponent(s.name)}`);
  s.events = es;
  let opened = false;
  es.onopen = () => {
    opened = true;
    $('live').textContent = 'live: head events';
    refresh().catch(fail); // anything published before the stream opened
  };
  es.addEventListener('head', (ev) => {
    stats.events++;
    stats.lastEventAt = Date.now();
    let h;
    try {
      h = JSON.parse(ev.data);
    } catch {
      h = {};
    }
    if (h.name === s.name && typeof h.head === 'string') announced = { head: h.head, record: typeof h.record === 'string' ? h.record : null };
    if (h.messages > s.known) s.known = h.messages;
    if (s.known > s.last) setSync(`behind by ${s.known - s.last}`, 'behind');
    else setSync('updating …', 'behind');
    refresh().catch(fail);
  });
  es.onerror = () => {
    if (opened || s.poll) return; // EventSource reconnects by itself
    es.close();
    $('live').textContent = 'no head events here: checking every 10 s';
    s.poll = setInterval(() => refresh().catch(fail), 10000);
  };
}

function start() {
  const p = params();
  $('name').value = p.name;
  $('gateway').value = p.gateway;
  $('form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    const name = $('name').value.trim(), gateway = $('gateway').value.trim();
    location.hash = new URLSearchParams({ name, gateway }).toString();
  });
  $('older').addEventListener('click', () => older().catch(fail));
  window.addEventListener('hashchange', () => {
    const p = params();
    if (p.name) open(p.name, p.gateway).catch(fail);
  });
  if (!globalThis.crypto?.subtle) {
    setStatus('This page verifies with WebCrypto, which browsers offer only over https or on localhost.', 'error');
    return;
  }
  if (p.name) open(p.name, p.gateway).catch(fail);
}

start();
