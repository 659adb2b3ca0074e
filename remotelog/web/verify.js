// rlog's in-browser verifier: CIDs, DAG-CBOR, IPNS records, pages (format
// v1 and v2, docs/FORMAT.md), index nodes and messages, over any IPFS
// trustless gateway. Nothing a gateway returns is trusted: every block is
// hashed (SHA-256) against its CID, the record's Ed25519 signature is
// checked against the name's key, pages and index nodes are decoded as
// strictly as pager.Decode and pager.DecodeIndex (what the Go encoder would
// not write is refused), and every message is hashed to its id. Every
// decoder throws Refused, and nothing else, on any input. It needs WebCrypto (SHA-256, Ed25519): a secure context
// (https, or http on localhost/127.0.0.1).

export class Refused extends Error {}

const te = new TextEncoder();

// --- multibase --------------------------------------------------------

const b32 = 'abcdefghijklmnopqrstuvwxyz234567';
const b36 = '0123456789abcdefghijklmnopqrstuvwxyz';
const b58 = '123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz';

function base32Decode(s) {
  const out = [];
  let bits = 0, value = 0;
  for (const ch of s) {
    const v = b32.indexOf(ch);
    if (v < 0) throw new Refused(`not base32: ${JSON.stringify(ch)}`);
    value = (value << 5) | v;
    bits += 5;
    if (bits >= 8) {
      out.push((value >>> (bits - 8)) & 255);
      bits -= 8;
    }
  }
  return new Uint8Array(out);
}

function base32Encode(b) {
  let out = '', bits = 0, value = 0;
  for (const x of b) {
    value = (value << 8) | x;
    bits += 8;
    while (bits >= 5) {
      out += b32[(value >>> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  if (bits > 0) out += b32[(value << (5 - bits)) & 31];
  return out;
}

function baseXDecode(s, alphabet) {
  let n = 0n;
  const base = BigInt(alphabet.length);
  for (const ch of s) {
    const v = alphabet.indexOf(ch);
    if (v < 0) throw new Refused(`bad character ${JSON.stringify(ch)}`);
    n = n * base + BigInt(v);
  }
  const bytes = [];
  while (n > 0n) {
    bytes.unshift(Number(n & 255n));
    n >>= 8n;
  }
  for (const ch of s) {
    if (ch !== alphabet[0]) break;
    bytes.unshift(0);
  }
  return new Uint8Array(bytes);
}

// --- varints and CIDs -------------------------------------------------

// varint reads an unsigned varint of up to 7 bytes (49 bits) in its
// shortest form, as CIDs and multihashes need.
function varint(b, pos) {
  let n = 0, shift = 0;
  for (;;) {
    if (pos >= b.length) throw new Refused('varint cut short');
    const x = b[pos++];
    n += (x & 127) * 2 ** shift;
    if (x < 128) {
      if (x === 0 && shift > 0) throw new Refused('varint not in its shortest form');
      return [n, pos];
    }
    shift += 7;
    if (shift > 42) throw new Refused('varint too long');
  }
}

export const codecs = { raw: 0x55, dagPB: 0x70, dagCBOR: 0x71, libp2pKey: 0x72 };

// A CID: version, codec, multihash code and digest, and its bytes.
export class CID {
  constructor(bytes) {
    if (!(bytes instanceof Uint8Array)) throw new Refused('CID: not bytes');
    let pos = 0, version, codec;
    if (bytes.length === 34 && bytes[0] === 0x12 && bytes[1] === 0x20) { // CIDv0
      version = 0; codec = codecs.dagPB;
    } else {
      [version, pos] = varint(bytes, 0);
      if (version !== 1) throw new Refused(`CID version ${version}`);
      [codec, pos] = varint(bytes, pos);
    }
    let code, len;
    [code, pos] = varint(bytes, pos);
    [len, pos] = varint(bytes, pos);
    if (pos + len !== bytes.length) throw new Refused('CID multihash length');
    Object.assign(this, { version, codec, code, bytes, digest: bytes.subarray(pos) });
  }
  static parse(s) {
    if (typeof s !== 'string') throw new Refused('CID: not text');
    if (s.startsWith('b')) return new CID(base32Decode(s.slice(1)));
    if (s.startsWith('k')) return new CID(baseXDecode(s.slice(1), b36));
    if (s.startsWith('Qm')) return new CID(baseXDecode(s, b58));
    throw new Refused(`unsupported CID ${JSON.stringify(s.slice(0, 80))}`);
  }
  // sha256v1 is whether it is a CIDv1 of codec with a SHA2-256 hash.
  sha256v1(codec) {
    return this.version === 1 && this.codec === codec && this.code === 0x12 && this.digest.length === 32;
  }
  toString() { return 'b' + base32Encode(this.bytes); }
  equals(o) { return o instanceof CID && bytesEqual(this.bytes, o.bytes); }
}

export function bytesEqual(a, b) {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

export function hex(b) {
  return Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
}

export async function sha256(b) {
  return new Uint8Array(await crypto.subtle.digest('SHA-256', b));
}

// checkBlock refuses bytes whose hash is not the CID's.
export async function checkBlock(cid, bytes) {
  if (cid.code === 0x00) {
    if (!bytesEqual(cid.digest, bytes)) throw new Refused(`block ${cid}: does not match its CID: refused`);
    return;
  }
  if (cid.code !== 0x12 || cid.digest.length !== 32) throw new Refused(`block ${cid}: hash function ${cid.code} not supported`);
  if (!bytesEqual(await sha256(bytes), cid.digest)) {
    throw new Refused(`block ${cid}: its bytes do not match its hash (damaged or forged): refused`);
  }
}

// --- DAG-CBOR ---------------------------------------------------------

const utf8 = new TextDecoder('utf-8', { fatal: true });

function text(b, what) {
  try {
    return utf8.decode(b);
  } catch {
    throw new Refused(`${what}: not UTF-8`);
  }
}

// decodeCBOR decodes one DAG-CBOR value: maps (as Map with text keys),
// arrays, byte and text strings, integers, booleans, null, and tag 42
// (CID). IPNS records' data is read with it; pages and index nodes with
// the stricter Strict reader below.
export function decodeCBOR(b) {
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  let pos = 0;
  const need = (n) => {
    if (pos + n > b.length) throw new Refused('CBOR cut short');
  };
  const arg = (info) => {
    if (info < 24) return info;
    const size = { 24: 1, 25: 2, 26: 4, 27: 8 }[info];
    if (!size) throw new Refused(`CBOR: indefinite or reserved length ${info}`);
    need(size);
    let v;
    if (size === 1) v = b[pos];
    else if (size === 2) v = dv.getUint16(pos);
    else if (size === 4) v = dv.getUint32(pos);
    else {
      const big = dv.getBigUint64(pos);
      if (big > BigInt(Number.MAX_SAFE_INTEGER)) throw new Refused('CBOR: integer too large');
      v = Number(big);
    }
    pos += size;
    return v;
  };
  const item = (depth) => {
    if (depth > 64) throw new Refused('CBOR nested too deep');
    need(1);
    const first = b[pos++];
    const major = first >> 5, info = first & 31;
    if (major === 7) {
      if (info === 20) return false;
      if (info === 21) return true;
      if (info === 22) return null;
      throw new Refused(`CBOR simple value ${info}`);
    }
    const n = arg(info);
    switch (major) {
      case 0: return n;
      case 1: return -1 - n;
      case 2: need(n); pos += n; return b.subarray(pos - n, pos);
      case 3: need(n); pos += n; return text(b.subarray(pos - n, pos), 'CBOR text');
      case 4: {
        if (n > b.length) throw new Refused('CBOR array too long');
        const a = [];
        for (let i = 0; i < n; i++) a.push(item(depth + 1));
        return a;
      }
      case 5: {
        if (n > b.length) throw new Refused('CBOR map too long');
        const m = new Map();
        for (let i = 0; i < n; i++) {
          const k = item(depth + 1);
          if (typeof k !== 'string') throw new Refused('CBOR map key not text');
          if (m.has(k)) throw new Refused(`CBOR map key ${JSON.stringify(k)} twice`);
          m.set(k, item(depth + 1));
        }
        return m;
      }
      case 6: {
        if (n !== 42) throw new Refused(`CBOR tag ${n}`);
        const v = item(depth + 1);
        if (!(v instanceof Uint8Array) || v[0] !== 0) throw new Refused('CBOR CID tag');
        return new CID(v.subarray(1));
      }
    }
    throw new Refused(`CBOR major type ${major}`);
  };
  const v = item(0);
  if (pos !== b.length) throw new Refused('CBOR: bytes after the value');
  return v;
}

// The limits of pager (docs/FORMAT.md).
export const limits = {
  pageBytes: 1 << 20, entries: 4096, window: 4096, addrs: 16, addrLen: 1024,
  indexPages: 4096, indexNodes: 4096, maxSeq: 2 ** 62,
};
const [UINT, BYTES, TEXT, ARRAY, MAP, TAG] = [0, 2, 3, 4, 5, 6];
const majorNames = ['unsigned integer', 'negative integer', 'byte string', 'text string', 'array', 'map', 'tag', 'float or simple value'];

// Strict reads canonical DAG-CBOR the way pager's reader does: each item
// of the type the schema wants, integers in their shortest form, map keys
// in canonical order without repeats, bounded lengths.
class Strict {
  constructor(b, what) {
    this.b = b;
    this.off = 0;
    this.what = what;
  }
  error(msg) {
    return new Refused(`${this.what}: malformed at byte ${this.off}: ${msg}`);
  }
  head(major) {
    const b = this.b;
    if (this.off >= b.length) throw this.error('unexpected end of data');
    const ib = b[this.off];
    if (ib >> 5 !== major) throw this.error(`found ${majorNames[ib >> 5]}, want ${majorNames[major]}`);
    const info = ib & 31;
    this.off++;
    if (info < 24) return info;
    const size = { 24: 1, 25: 2, 26: 4, 27: 8 }[info];
    if (!size) throw this.error(`indefinite or reserved length (additional info ${info})`);
    if (b.length - this.off < size) throw this.error('unexpected end of data');
    let n = 0;
    for (let i = 0; i < size; i++) n = n * 256 + b[this.off + i];
    this.off += size;
    if (n > Number.MAX_SAFE_INTEGER) throw this.error(`integer over 2^53 (${hex(b.subarray(this.off - size, this.off))})`);
    const shortest = n < 24 ? 0 : n < 256 ? 1 : n < 65536 ? 2 : n < 2 ** 32 ? 4 : 8;
    if (shortest !== size) throw this.error(`integer ${n} not in shortest form`);
    return n;
  }
  uint() { return this.head(UINT); }
  bytes(max) {
    const n = this.head(BYTES);
    if (n > max || n > this.b.length - this.off) throw this.error(`byte string of ${n} bytes (limit ${max}, ${this.b.length - this.off} left)`);
    this.off += n;
    return this.b.subarray(this.off - n, this.off);
  }
  text(max) {
    const n = this.head(TEXT);
    if (n > max || n > this.b.length - this.off) throw this.error(`text string of ${n} bytes (limit ${max}, ${this.b.length - this.off} left)`);
    this.off += n;
    return new TextDecoder().decode(this.b.subarray(this.off - n, this.off));
  }
  length(major, max, what) {
    const n = this.head(major);
    if (n > max) throw this.error(`${what} has ${n} items, limit ${max}`);
    return n;
  }
  cid() {
    const tag = this.head(TAG);
    if (tag !== 42) throw this.error(`tag ${tag}, want 42 (CID)`);
    const raw = this.bytes(128);
    if (raw.length === 0 || raw[0] !== 0) throw this.error('CID without the 0x00 multibase prefix');
    try {
      return new CID(raw.subarray(1));
    } catch (e) {
      throw this.error(`bad CID: ${e.message}`);
    }
  }
  // keys reads n map keys in canonical order, calling f at each value.
  keys(n, f) {
    let prev = null;
    for (let i = 0; i < n; i++) {
      const k = this.text(16);
      if (prev !== null && !(prev.length < k.length || (prev.length === k.length && prev < k))) {
        throw this.error(prev === k ? `duplicate key ${JSON.stringify(k)}` : `key ${JSON.stringify(k)} after ${JSON.stringify(prev)}: not in canonical order`);
      }
      prev = k;
      f(k);
    }
  }
  // map reads a whole block that is one map of at most maxKeys keys.
  map(maxKeys, f) {
    if (this.b.length > limits.pageBytes) throw new Refused(`${this.what}: ${this.b.length} bytes, limit ${limits.pageBytes}`);
    const have = new Set();
    this.keys(this.length(MAP, maxKeys, this.what), (k) => {
      have.add(k);
      f(k);
    });
    if (this.off !== this.b.length) throw this.error(`${this.b.length - this.off} trailing bytes`);
    return have;
  }
  links(max, what) {
    const out = [];
    const n = this.length(ARRAY, max, what);
    for (let i = 0; i < n; i++) {
      if (this.length(ARRAY, 2, 'link') !== 2) throw this.error(`${what}[${i}] is not a pair [CID, s]`);
      out.push({ cid: this.cid(), s: this.uint() });
    }
    return out;
  }
}

function isPageLink(c) { return c.sha256v1(codecs.dagCBOR); }
function isPayloadRef(c) { return c.sha256v1(codecs.raw) || c.sha256v1(codecs.dagPB); }
const sameLink = (a, b) => a.cid.equals(b.cid) && a.s === b.s;

// decodePage decodes a page block as pager.Decode does, v1 or v2, and
// refuses what it refuses (docs/FORMAT.md, "Rules a decoder enforces").
// Entries are {payload} (v2 inline), {payload, id} (v1 inline) or
// {id, ref} (a pointer).
export function decodePage(cid, bytes) {
  if (!isPageLink(cid)) throw new Refused(`page ${cid}: not a DAG-CBOR SHA2-256 CIDv1`);
  const r = new Strict(bytes, `page ${cid}`);
  const pg = { cid, v: undefined, p: undefined, s: undefined, entries: [], links: [], window: null, index: null, tail: [], addrs: [] };
  let bare = 0, v1Inline = 0;
  const have = r.map(9, (k) => {
    switch (k) {
      case 'a': {
        const n = r.length(ARRAY, limits.addrs, 'a');
        for (let i = 0; i < n; i++) pg.addrs.push(r.text(limits.addrLen));
        break;
      }
      case 'e': {
        const n = r.length(ARRAY, limits.entries, 'e');
        for (let i = 0; i < n; i++) {
          if (r.off < r.b.length && r.b[r.off] >> 5 === BYTES) {
            bare++;
            pg.entries.push({ payload: r.bytes(limits.pageBytes) });
            continue;
          }
          const e = entry(r, i);
          if (e.payload) v1Inline++;
          pg.entries.push(e);
        }
        break;
      }
      case 'l': pg.links = r.links(64, 'l'); break;
      case 'n': pg.node = r.cid(); break;
      case 'p': pg.p = r.uint(); break;
      case 's': pg.s = r.uint(); break;
      case 't':
        pg.tail = r.links(limits.entries, 't');
        if (pg.tail.length === 0) throw r.error('empty "t" must be omitted');
        break;
      case 'v': pg.v = r.uint(); break;
      case 'w': pg.window = r.links(limits.window, 'w'); break;
      case 'x': {
        pg.index = [];
        const n = r.length(ARRAY, limits.indexNodes, 'x');
        for (let i = 0; i < n; i++) {
          if (r.length(ARRAY, 3, 'index link') !== 3) throw r.error(`index link ${i} is not a triple [CID, n, s]`);
          pg.index.push({ cid: r.cid(), n: r.uint(), s: r.uint() });
        }
        break;
      }
      default: throw r.error(`unknown key ${JSON.stringify(k)}`);
    }
  });
  const bad = (msg) => new Refused(`page ${cid}: malformed: ${msg}`);
  pg.head = pg.window !== null || pg.v === 3;
  if (!have.has('v')) throw bad('missing key "v"');
  if (pg.v !== 1 && pg.v !== 2 && pg.v !== 3) throw new Refused(`page ${cid}: format version ${pg.v} (this page reads 1, 2 and 3)`);
  if (have.has('n') && pg.v !== 3) throw bad(`key "n" in a v${pg.v} page (only a v3 head links a window node)`);
  // v3 changes only the head: its window and index links are in its
  // window node (attach), its entries and tail pieces are as in v2.
  const v3 = pg.v === 3;
  const v2 = pg.v !== 1;
  if (v3) {
    if (have.has('w') || have.has('x')) throw bad('key "w" or "x" in a v3 head (its window node holds them)');
    if (have.has('l')) throw bad('key "l" in a v3 head (no skip links)');
    if (v1Inline > 0) throw bad('an inline entry in v1 form {c, i} in a v3 head');
    if (pg.p > 0 && !pg.node) throw bad(`v3 head page ${pg.p} links no window node "n": its sealed pages are not reachable`);
    if (pg.p === 0 && pg.node) throw bad('v3 head page 0 links a window node, but has no sealed page to list');
    if (pg.node && !isPageLink(pg.node)) throw bad(`n: ${pg.node} is not a DAG-CBOR SHA2-256 CIDv1`);
  } else if (v2) {
    if (have.has('l')) throw bad('key "l" in a v2 page (v2 pages carry no skip links)');
    if (v1Inline > 0) throw bad('an inline entry in v1 form {c, i} in a v2 page');
    if (pg.head && !have.has('x')) throw bad('a v2 head page without "x"');
    if (!pg.head && have.has('x')) throw bad('key "x" on a sealed page (no "w")');
  } else {
    if (have.has('x')) throw bad('key "x" in a v1 page');
    if (bare > 0) throw bad('an entry without id in a v1 page');
  }
  for (const k of v2 ? ['p', 's', 'e'] : ['p', 's', 'e', 'l']) if (!have.has(k)) throw bad(`missing key "${k}"`);
  if (have.has('a') && !pg.head) throw bad('key "a" on a sealed page (no "w")');
  if (have.has('a') && pg.addrs.length === 0) throw bad('empty "a" must be omitted');
  const { p, s, entries, links, window, tail } = pg;
  // The page begins at its first tail piece, or at its own first entry.
  pg.pageStart = tail.length > 0 ? tail[0].s : s;
  if (entries.length === 0) throw bad(`page ${p} has no entries`);
  if (s < p + 1) throw bad(`page ${p} starts at sequence ${s}: s must be at least p+1`);
  if (s > limits.maxSeq) throw bad(`sequence ${s} out of range`);
  // A sealed v2 page 0 may be a tail piece of a head page 0: that the
  // page 0 a link names starts at 1 is checked where it is linked (Log).
  if (p === 0 && pg.pageStart !== 1 && (pg.head || !v2)) throw bad(`page 0 starts at sequence ${pg.pageStart}, want 1`);
  const want = p === 0 ? 0 : Math.floor(Math.log2(p)) + 1;
  if (!v2 && links.length !== want) throw bad(`page ${p} has ${links.length} skip links, want ${want}`);
  links.forEach((l, j) => {
    if (!isPageLink(l.cid)) throw bad(`l[${j}]: ${l.cid} is not a DAG-CBOR SHA2-256 CIDv1`);
    const target = p - 2 ** j;
    if (l.s < target + 1 || l.s >= s || (j > 0 && l.s >= links[j - 1].s)) throw bad(`l[${j}] (page ${target}) starts at sequence ${l.s}, inconsistent with page ${p} at ${s}`);
  });
  if (pg.head && !v3) {
    checkWindow(p, s, window, bad);
    window.forEach((w, k) => {
      if (!v2 && ((k + 1) & k) === 0 && !sameLink(links[Math.log2(k + 1)], w)) throw bad(`w[${k}] and l[${Math.log2(k + 1)}] name page ${p - k - 1} differently`);
    });
  }
  if (tail.length > 0 && !(v2 && pg.head)) throw bad('tail pieces "t" on a page that is not a v2 head');
  tail.forEach((l, i) => {
    if (!isPageLink(l.cid)) throw bad(`t[${i}]: ${l.cid} is not a DAG-CBOR SHA2-256 CIDv1`);
    if (l.s < p + 1 || l.s >= s || (i > 0 && l.s <= tail[i - 1].s)) throw bad(`t[${i}] starts at sequence ${l.s}: impossible before the head's entries at ${s}`);
  });
  if (tail.length > 0 && window?.length > 0 && window[0].s >= tail[0].s) throw bad(`w[0] starts at sequence ${window[0].s}, not before the page's first piece at ${tail[0].s}`);
  if (v2 && !v3 && pg.head) checkIndexLinks(pg.p, pg.s, pg.index, bad);
  if (v3 && !pg.node) [pg.window, pg.index] = [[], []]; // page 0: nothing to attach
  entries.forEach((e, i) => {
    if (e.ref && !isPayloadRef(e.ref)) throw bad(`entry ${i}: pointer ${e.ref} is not a raw or dag-pb SHA2-256 CIDv1`);
  });
  pg.last = s + entries.length - 1;
  return pg;
}

// entry reads a v1 entry or a v2 pointer: a map of i and one of c and r.
function entry(r, i) {
  const n = r.length(MAP, 3, 'entry');
  const e = {};
  r.keys(n, (k) => {
    if (k === 'c') e.payload = r.bytes(limits.pageBytes);
    else if (k === 'i') {
      e.id = r.bytes(32);
      if (e.id.length !== 32) throw r.error(`entry ${i}: id is ${e.id.length} bytes, want 32`);
    } else if (k === 'r') e.ref = r.cid();
    else throw r.error(`entry ${i}: unknown key ${JSON.stringify(k)}`);
  });
  if (!e.id) throw new Refused(`${r.what}: malformed: entry ${i}: no id "i"`);
  if (e.payload && e.ref) throw new Refused(`${r.what}: malformed: entry ${i}: both inline payload "c" and pointer "r"`);
  if (!e.payload && !e.ref) throw new Refused(`${r.what}: malformed: entry ${i}: neither inline payload "c" nor pointer "r"`);
  return e;
}

// checkWindow checks the window links of head page p whose entries start
// at s: newest first, each older than the page after it.
function checkWindow(p, s, window, bad) {
  if (window.length > p) throw bad(`window of ${window.length} pages before page ${p}`);
  window.forEach((w, k) => {
    if (!isPageLink(w.cid)) throw bad(`w[${k}]: ${w.cid} is not a DAG-CBOR SHA2-256 CIDv1`);
    if (w.s >= (k === 0 ? s : window[k - 1].s)) throw bad(`w[${k}] starts at sequence ${w.s}, not older than the page after it`);
  });
}

// checkIndexLinks checks a head's x (v2, or a v3 window node's): from
// page 0 on, oldest first, every one before head page p starting at s.
function checkIndexLinks(p, s, x, bad) {
  const pg = { p, s };
  if (pg.p > 0 && x.length === 0) throw bad(`head page ${pg.p} lists no index node: the sealed pages are not reachable`);
  x.forEach((l, i) => {
    if (!isPageLink(l.cid)) throw bad(`x[${i}]: ${l.cid} is not a DAG-CBOR SHA2-256 CIDv1`);
    if (i === 0 && (l.n !== 0 || l.s !== 1)) throw bad(`x[0] lists page ${l.n} at sequence ${l.s}, want page 0 at 1`);
    if (i > 0 && (l.n <= x[i - 1].n || l.s <= x[i - 1].s)) throw bad(`x[${i}] (page ${l.n} at ${l.s}) does not follow x[${i - 1}]`);
    if (i > 0 && l.n - x[i - 1].n > limits.indexPages) throw bad(`x[${i - 1}] lists more than ${limits.indexPages} pages`);
    if (l.n >= pg.p || l.s >= pg.s || l.s < l.n + 1) throw bad(`x[${i}] (page ${l.n} at ${l.s}) is impossible before page ${pg.p} at ${pg.s}`);
  });
  if (x.length > 0 && pg.p - x[x.length - 1].n > limits.indexPages) throw bad(`the last index node would list more than ${limits.indexPages} pages`);
}

// decodeWindowNode decodes a v3 window node as pager.DecodeWindowNode
// does: {p, v: 3, w, x}, the links a v2 head carries itself.
export function decodeWindowNode(cid, bytes) {
  if (!isPageLink(cid)) throw new Refused(`window node ${cid}: not a DAG-CBOR SHA2-256 CIDv1`);
  const r = new Strict(bytes, `window node ${cid}`);
  const wn = { cid, p: undefined, v: undefined, window: undefined, index: undefined };
  const have = r.map(4, (k) => {
    if (k === 'p') wn.p = r.uint();
    else if (k === 'v') wn.v = r.uint();
    else if (k === 'w') wn.window = r.links(limits.window, 'w');
    else if (k === 'x') {
      wn.index = [];
      const n = r.length(ARRAY, limits.indexNodes, 'x');
      for (let i = 0; i < n; i++) {
        if (r.length(ARRAY, 3, 'index link') !== 3) throw r.error(`index link ${i} is not a triple [CID, n, s]`);
        wn.index.push({ cid: r.cid(), n: r.uint(), s: r.uint() });
      }
    } else throw r.error(`unknown key ${JSON.stringify(k)} in a window node`);
  });
  const bad = (msg) => new Refused(`window node ${cid}: malformed: ${msg}`);
  for (const k of ['p', 'v', 'w', 'x']) if (!have.has(k)) throw bad(`window node without key "${k}"`);
  if (wn.v !== 3) throw new Refused(`window node ${cid}: version ${wn.v} (window nodes are v3)`);
  if (wn.p === 0) throw bad('a window node of head page 0 (which has no sealed page to list)');
  if (wn.p > limits.maxSeq) throw bad(`page number ${wn.p} out of range`);
  const anyStart = limits.maxSeq + 1;
  checkWindow(wn.p, anyStart, wn.window, bad);
  checkIndexLinks(wn.p, anyStart, wn.index, bad);
  return wn;
}

// attach gives a v3 head the window and index links of its window node,
// checked against the head as pager's Attach does.
export function attach(pg, wn) {
  const bad = (msg) => new Refused(`window node ${wn.cid} of head ${pg.cid}: malformed: ${msg}`);
  if (pg.v !== 3 || !pg.node) throw new Refused(`page ${pg.cid} is not a v3 head with a window node`);
  if (!wn.cid.equals(pg.node)) throw bad(`the head links ${pg.node}`);
  if (wn.p !== pg.p) throw bad(`it is for head page ${wn.p}, the head is page ${pg.p}`);
  checkWindow(pg.p, pg.s, wn.window, bad);
  if (pg.tail.length > 0 && wn.window.length > 0 && wn.window[0].s >= pg.tail[0].s) throw bad(`w[0] starts at sequence ${wn.window[0].s}, not before the page's first piece at ${pg.tail[0].s}`);
  checkIndexLinks(pg.p, pg.pageStart, wn.index, bad);
  pg.window = wn.window;
  pg.index = wn.index;
  return pg;
}

// decodeIndex decodes an index node as pager.DecodeIndex does:
// {f, l, v: 2}, 1..4096 links of increasing, possible starts.
export function decodeIndex(cid, bytes) {
  if (!isPageLink(cid)) throw new Refused(`index node ${cid}: not a DAG-CBOR SHA2-256 CIDv1`);
  const r = new Strict(bytes, `index node ${cid}`);
  let f, l, v;
  const have = r.map(3, (k) => {
    if (k === 'f') f = r.uint();
    else if (k === 'l') l = r.links(limits.indexPages, 'l');
    else if (k === 'v') v = r.uint();
    else throw r.error(`unknown key ${JSON.stringify(k)} in an index node`);
  });
  const bad = (msg) => new Refused(`index node ${cid}: malformed: ${msg}`);
  for (const k of ['f', 'l', 'v']) if (!have.has(k)) throw bad(`no key "${k}"`);
  if (v !== 2) throw new Refused(`index node ${cid}: version ${v} (index nodes are v2)`);
  if (l.length === 0) throw bad('lists no pages');
  if (f > limits.maxSeq) throw bad(`page number ${f} out of range`);
  l.forEach((x, k) => {
    if (!isPageLink(x.cid)) throw bad(`l[${k}]: ${x.cid} is not a DAG-CBOR SHA2-256 CIDv1`);
    const p = f + k;
    if (x.s < p + 1 || (k > 0 && x.s <= l[k - 1].s) || (p === 0 && x.s !== 1) || x.s > limits.maxSeq) {
      throw bad(`l[${k}] (page ${p}) starts at sequence ${x.s}: impossible after the pages before it`);
    }
  });
  return { cid, first: f, pages: l, last: f + l.length - 1 };
}

// --- protobuf and messages --------------------------------------------

// pvarint reads a protobuf varint (up to 10 bytes, 64 bits) as a BigInt.
function pvarint(b, pos) {
  let n = 0n;
  for (let i = 0; i < 10; i++) {
    if (pos >= b.length) throw new Refused('protobuf: varint cut short');
    const x = b[pos++];
    n |= BigInt(x & 127) << BigInt(7 * i);
    if (x < 128) {
      if (i === 9 && x > 1) throw new Refused('protobuf: varint over 64 bits');
      return [n, pos];
    }
  }
  throw new Refused('protobuf: varint over 10 bytes');
}

// protoFields calls f(number, wire, value) for each varint (BigInt) and
// length-delimited (bytes) field of a protobuf message; fixed-size fields
// and groups are skipped, as protowire does; anything malformed is refused.
function protoFields(b, f) {
  let pos = 0;
  const groups = []; // the numbers of the groups being skipped
  while (pos < b.length) {
    let key, v;
    [key, pos] = pvarint(b, pos);
    const num = Number(key >> 3n), wire = Number(key & 7n);
    if (num === 0 || key >> 3n > 0x7fffffffn) throw new Refused(`protobuf: bad field number ${key >> 3n}`);
    if (wire === 0) [v, pos] = pvarint(b, pos);
    else if (wire === 2) {
      let len;
      [len, pos] = pvarint(b, pos);
      if (len > BigInt(b.length - pos)) throw new Refused(`protobuf: field ${num} cut short`);
      v = b.subarray(pos, pos + Number(len));
      pos += Number(len);
    } else if (wire === 1 || wire === 5) {
      pos += wire === 1 ? 8 : 4;
      if (pos > b.length) throw new Refused(`protobuf: field ${num} cut short`);
      continue;
    } else if (wire === 3) {
      if (groups.push(num) > 10000) throw new Refused('protobuf: groups nested too deep');
      continue;
    } else if (wire === 4) {
      if (groups.pop() !== num) throw new Refused(`protobuf: end of group ${num} that is not open`);
      continue;
    } else throw new Refused(`protobuf: field ${num} of wire type ${wire}`);
    if (groups.length === 0) f(num, wire, v);
  }
  if (groups.length > 0) throw new Refused(`protobuf: group ${groups.at(-1)} not ended`);
}

// decodePayload reads an MVDS message's wire payload as
// mvds.UnmarshalMessage does: group 6001, timestamp 6002, body 6003,
// metadata 6004 (or 1..4, the numbering of the first known field; fields
// of the other are skipped), unknown fields and wrong wire types skipped,
// the last of a repeated field wins.
export function decodePayload(b) {
  if (!(b instanceof Uint8Array)) throw new Refused('payload: not bytes');
  let numbering = null;
  const m = { group: new Uint8Array(), timestamp: 0n, body: new Uint8Array() };
  protoFields(b, (num, wire, v) => {
    let i = -1, n = null;
    for (const [k, nums] of [[6001, 1], [6002, 2], [6003, 3], [6004, 4]].entries()) {
      const at = nums.indexOf(num);
      if (at >= 0) [i, n] = [k, at];
    }
    if (i < 0 || (numbering !== null && numbering !== n)) return;
    numbering = n;
    if (wire !== (i === 1 ? 0 : 2)) return;
    if (i === 0) m.group = v;
    else if (i === 1) m.timestamp = v;
    else if (i === 2) m.body = v;
    else protoFields(v, () => {}); // metadata must be protobuf too
  });
  m.timestamp = BigInt.asIntN(64, m.timestamp);
  return m;
}

// messageId is H1: SHA-256("MESSAGE_ID" || group || uint64_le(ts) || body).
export async function messageId(m) {
  const ts = new Uint8Array(8);
  new DataView(ts.buffer).setBigUint64(0, BigInt.asUintN(64, BigInt(m.timestamp)), true);
  const pre = te.encode('MESSAGE_ID');
  const all = new Uint8Array(pre.length + m.group.length + 8 + m.body.length);
  all.set(pre, 0);
  all.set(m.group, pre.length);
  all.set(ts, pre.length + m.group.length);
  all.set(m.body, pre.length + m.group.length + 8);
  return sha256(all);
}

// --- IPNS -------------------------------------------------------------

// protoMap is a protobuf message's fields: number -> last value.
function protoMap(b) {
  const f = new Map();
  protoFields(b, (num, wire, v) => f.set(num, v));
  return f;
}

// nameKey returns the Ed25519 public key an IPNS name (k51..., a
// libp2p-key CID with the key inline, or a 12D3Koo... peer id) holds.
export function nameKey(name) {
  let mh;
  if (typeof name !== 'string') throw new Refused('IPNS name: not text');
  if (name.startsWith('12D3Koo')) mh = baseXDecode(name, b58);
  else {
    const c = CID.parse(name);
    if (c.codec !== codecs.libp2pKey) throw new Refused(`${name} is not an IPNS name (not a libp2p-key CID)`);
    mh = c.bytes.subarray(c.bytes.length - c.digest.length - 2);
  }
  let code, len, pos;
  [code, pos] = varint(mh, 0);
  [len, pos] = varint(mh, pos);
  if (code !== 0x00 || pos + len !== mh.length) throw new Refused('IPNS name: only names holding their key inline (Ed25519) verify here');
  const pk = protoMap(mh.subarray(pos, pos + len));
  if (pk.get(1) !== 1n) throw new Refused(`IPNS name: key type ${pk.get(1)}: only Ed25519 verifies here`);
  const key = pk.get(2);
  if (!(key instanceof Uint8Array) || key.length !== 32) throw new Refused('IPNS name: bad Ed25519 key');
  return key;
}

// verifyRecord checks a signed IPNS record (V2 signature, validity) for
// the name and returns {value, head, sequence, validity, ttlSeconds}.
export async function verifyRecord(name, raw, now = Date.now()) {
  if (raw.length > 10 << 10) throw new Refused('IPNS record over 10 KiB');
  const key = nameKey(name);
  const f = protoMap(raw);
  const data = f.get(9), sig = f.get(8);
  if (!(data instanceof Uint8Array) || !(sig instanceof Uint8Array)) throw new Refused('IPNS record without a V2 signature');
  const msg = new Uint8Array([...te.encode('ipns-signature:'), ...data]);
  let ok = false;
  try {
    const pub = await crypto.subtle.importKey('raw', key, { name: 'Ed25519' }, false, ['verify']);
    ok = await crypto.subtle.verify({ name: 'Ed25519' }, pub, sig, msg);
  } catch (e) {
    throw new Refused(`IPNS record for ${name}: the signature cannot be checked: ${e.message}`);
  }
  if (!ok) throw new Refused(`IPNS record for ${name}: the signature does not verify: refused`);
  const d = decodeCBOR(data);
  if (!(d instanceof Map)) throw new Refused('IPNS record data is not a map');
  const field = (k, type) => {
    const v = d.get(k);
    if (type === 'bytes' ? !(v instanceof Uint8Array) : typeof v !== 'number') throw new Refused(`IPNS record: ${k} missing or not ${type}`);
    return v;
  };
  const value = text(field('Value', 'bytes'), 'IPNS record value');
  const validity = text(field('Validity', 'bytes'), 'IPNS record validity');
  if (field('ValidityType', 'number') !== 0) throw new Refused('IPNS record: unknown validity type');
  const sequence = field('Sequence', 'number');
  const ttl = d.has('TTL') ? field('TTL', 'number') : 0;
  const until = Date.parse(validity);
  if (!(until > now)) throw new Refused(`IPNS record for ${name}: expired (${validity})`);
  if (f.has(1) && !(f.get(1) instanceof Uint8Array && bytesEqual(f.get(1), te.encode(value)))) throw new Refused('IPNS record: V1 value differs from the signed data');
  if (!value.startsWith('/ipfs/')) throw new Refused(`IPNS record value ${value} is not /ipfs/CID`);
  return { value, head: CID.parse(value.slice(6)), sequence, validity, ttlSeconds: Math.round(ttl / 1e9) };
}

// --- reading a log ----------------------------------------------------

// Gateway reads blocks and records from a trustless gateway, verifying.
export class Gateway {
  constructor(url) {
    this.url = url.replace(/\/+$/, '');
    this.bytes = 0;
    this.blocks = 0;
  }
  // get fetches path; fresh skips the browser's cache (records change,
  // blocks never do).
  async get(path, accept, fresh = false) {
    const resp = await fetch(this.url + path, { headers: { Accept: accept }, cache: fresh ? 'no-store' : 'default' });
    if (!resp.ok) throw new Error(`${this.url}${path}: ${resp.status} ${resp.statusText}`);
    const b = new Uint8Array(await resp.arrayBuffer());
    this.bytes += b.length;
    return b;
  }
  async block(cid) {
    const b = await this.get(`/ipfs/${cid}?format=raw`, 'application/vnd.ipld.raw');
    await checkBlock(cid, b);
    this.blocks++;
    return b;
  }
  async page(cid) {
    return decodePage(cid, await this.block(cid));
  }
  async index(cid) {
    return decodeIndex(cid, await this.block(cid));
  }
  // head fetches a head page and, for a v3 head, its window node (a round
  // after the head: this page does not use the record's hint).
  async head(cid) {
    const pg = await this.page(cid);
    if (pg.v === 3 && pg.node) attach(pg, decodeWindowNode(pg.node, await this.block(pg.node)));
    return pg;
  }
  async record(name) {
    let raw;
    try {
      raw = await this.get(`/ipns/${name}?format=ipns-record`, 'application/vnd.ipfs.ipns-record', true);
    } catch (e) {
      raw = await this.get(`/routing/v1/ipns/${name}`, 'application/vnd.ipfs.ipns-record', true);
    }
    return verifyRecord(name, raw);
  }
  // message resolves and verifies one entry's payload: its id is the hash
  // of the payload, which must be the entry's id where it has one.
  async message(seq, entry) {
    let payload = entry.payload;
    if (entry.ref) {
      if (entry.ref.codec !== codecs.raw) return { seq, id: entry.id, large: true };
      payload = await this.block(entry.ref);
    }
    const m = decodePayload(payload);
    const id = await messageId(m);
    if (entry.id && !bytesEqual(id, entry.id)) throw new Refused(`message ${seq}: does not match its id: refused`);
    return { seq, id, ...m };
  }
}

// Log finds and checks the pages of the log whose head is head, as
// remotelog's reader does: page links come from the head's window, its
// index nodes (v2) and v1 pages' skip links; a page must be the page and
// start its link says, not a head, and contiguous with the page after it;
// no two links may name one page differently, and page 0 starts at 1. Old
// v1 pages under a v2 head (a log that changed format) are read the same
// way. A v2 head's tail pieces (t) hold its page's entries before its own:
// each must be in sealed form with the head's page number and the start
// its link says, and end where the next piece or the head begins.
//
// Reading goes over slots, as remotelog's reader does: the sealed pages
// 0..h-1, then the head's tail pieces h..end-1, then the head, end; each
// page or piece read carries its slot.
export class Log {
  constructor(gw, head) {
    if (!head.head) throw new Refused(`${head.cid} is a sealed page, not a head`);
    Object.assign(this, { gw, head, known: new Map(), pages: new Map(), pieces: new Map(), nodes: new Map() });
    this.end = head.p + head.tail.length;
    head.slot = this.end;
    this.pages.set(head.p, Promise.resolve(head));
    this.learn(head);
  }
  addLink(p, l) {
    if (p < 0 || p >= this.head.p) throw new Refused(`a link names page ${p}, not before the head (page ${this.head.p})`);
    if (p === 0 && l.s !== 1) throw new Refused(`page 0 is linked as starting at sequence ${l.s}; a log starts at 1: refused`);
    const old = this.known.get(p);
    if (old && !sameLink(old, l)) throw new Refused(`page ${p} is linked both as ${old.cid} at ${old.s} and as ${l.cid} at ${l.s}: refused`);
    this.known.set(p, l);
  }
  learn(pg) {
    pg.links.forEach((l, j) => this.addLink(pg.p - 2 ** j, l));
    (pg.window || []).forEach((l, k) => this.addLink(pg.p - 1 - k, l));
  }
  // start is page p's first sequence, if known; the head's page begins at
  // its first tail piece.
  start(p) {
    if (p === this.head.p) return this.head.pageStart;
    return this.known.get(p)?.s ?? this.head.index?.find((x) => x.n === p)?.s;
  }
  // node fetches index node i once and learns the pages it lists.
  node(i) {
    if (!this.nodes.has(i)) {
      this.nodes.set(i, (async () => {
        const x = this.head.index[i];
        const end = i + 1 < this.head.index.length ? this.head.index[i + 1].n : this.head.p;
        const ix = await this.gw.index(x.cid);
        if (ix.first !== x.n || ix.pages[0].s !== x.s || ix.last + 1 !== end) {
          throw new Refused(`index node ${x.cid} lists pages ${ix.first} to ${ix.last} from sequence ${ix.pages[0].s}, but is linked as listing pages ${x.n} to ${end - 1} from ${x.s}: refused`);
        }
        ix.pages.forEach((l, k) => this.addLink(ix.first + k, l));
      })());
    }
    return this.nodes.get(i);
  }
  // link finds page p's link: from an index node (v2), or by fetching
  // the nearest newer page known, whose skip links come closer (v1).
  async link(p) {
    while (!this.known.has(p)) {
      const before = this.known.size;
      if (this.head.index) {
        const i = this.head.index.findLastIndex((x) => x.n <= p);
        if (i >= 0) await this.node(i);
      } else {
        let q = this.head.p;
        for (const k of this.known.keys()) if (k > p && k < q) q = k;
        await this.page(q);
      }
      if (!this.known.has(p) && this.known.size === before) throw new Refused(`no link names page ${p}`);
    }
    return this.known.get(p);
  }
  // page fetches and checks page p, once.
  page(p) {
    if (!this.pages.has(p)) {
      this.pages.set(p, (async () => {
        const l = await this.link(p);
        const pg = await this.gw.page(l.cid);
        if (pg.p !== p || pg.s !== l.s || pg.head) throw new Refused(`page ${pg.cid}: not page ${p} from sequence ${l.s} as linked (it says page ${pg.p} from ${pg.s}${pg.head ? ', a head' : ''})`);
        const next = this.start(p + 1);
        if (next !== undefined && pg.last + 1 !== next) throw new Refused(`page ${pg.cid}: not contiguous with page ${p + 1}`);
        this.learn(pg);
        pg.slot = p;
        return pg;
      })());
    }
    return this.pages.get(p);
  }
  // piece fetches and checks the head's tail piece i, once.
  piece(i) {
    if (!this.pieces.has(i)) {
      this.pieces.set(i, (async () => {
        const { p, tail } = this.head, l = tail[i];
        const pg = await this.gw.page(l.cid);
        if (pg.p !== p || pg.s !== l.s || pg.head) throw new Refused(`tail piece ${pg.cid}: not a piece of page ${p} from sequence ${l.s} as linked (it says page ${pg.p} from ${pg.s}${pg.head ? ', a head' : ''})`);
        const next = i + 1 < tail.length ? tail[i + 1].s : this.head.s;
        if (pg.last + 1 !== next) throw new Refused(`tail piece ${pg.cid} of page ${p} from sequence ${pg.s}: ends at ${pg.last}, but the next piece or the head starts at ${next}`);
        pg.slot = p + i;
        return pg;
      })());
    }
    return this.pieces.get(i);
  }
  // slot fetches slot q: a sealed page, a tail piece or the head.
  slot(q) {
    const h = this.head.p;
    return q < h ? this.page(q) : q < this.end ? this.piece(q - h) : Promise.resolve(this.head);
  }
  // firstSlot is the slot holding sequence seq. Beyond the head's window
  // (v2) the index nodes listing the pages from seq on are fetched at
  // once, one round; a v1 log is walked back through skip links.
  async firstSlot(seq) {
    const { p: h, tail, index, window } = this.head;
    if (seq >= this.head.s) return this.end;
    for (let i = tail.length - 1; i >= 0; i--) if (tail[i].s <= seq) return h + i;
    if (index) {
      const from = Math.max(0, index.findLastIndex((x) => x.s <= seq));
      const nodes = [];
      for (let i = from; i < index.length; i++) if (index[i].n < h - window.length) nodes.push(this.node(i));
      await Promise.all(nodes);
    }
    for (let p = h - 1; p > 0; p--) {
      if ((this.start(p) ?? (await this.link(p)).s) <= seq) return p;
    }
    return 0;
  }
  // pagesFrom is the pages and tail pieces from the one holding seq up to
  // slot upTo (the head, by default), oldest first, fetched in parallel.
  async pagesFrom(seq, upTo = this.end) {
    const first = Math.min(await this.firstSlot(seq), upTo);
    const want = [];
    for (let q = first; q <= upTo; q++) want.push(this.slot(q));
    return Promise.all(want);
  }
}
