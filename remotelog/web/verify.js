// rlog's in-browser verifier: CIDs, DAG-CBOR, IPNS records, pages and
// messages, over any IPFS trustless gateway. Nothing a gateway returns is
// trusted: every block is hashed (SHA-256) against its CID, the record's
// Ed25519 signature is checked against the name's key, and every message
// against its id. It needs WebCrypto (SHA-256, Ed25519): a secure context
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

function varint(b, pos) {
  let n = 0, shift = 0;
  for (;;) {
    if (pos >= b.length) throw new Refused('varint cut short');
    const x = b[pos++];
    n += (x & 127) * 2 ** shift;
    if (x < 128) return [n, pos];
    shift += 7;
    if (shift > 49) throw new Refused('varint too long');
  }
}

export const codecs = { raw: 0x55, dagPB: 0x70, dagCBOR: 0x71, libp2pKey: 0x72 };

// A CID: version, codec, multihash code and digest, and its bytes.
export class CID {
  constructor(bytes) {
    let pos = 0, version, codec;
    if (bytes[0] === 0x12 && bytes[1] === 0x20) { // CIDv0
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
    if (s.startsWith('b')) return new CID(base32Decode(s.slice(1)));
    if (s.startsWith('k')) return new CID(baseXDecode(s.slice(1), b36));
    if (s.startsWith('Qm')) return new CID(baseXDecode(s, b58));
    throw new Refused(`unsupported CID ${s}`);
  }
  toString() { return 'b' + base32Encode(this.bytes); }
  equals(o) { return o && bytesEqual(this.bytes, o.bytes); }
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

// decodeCBOR decodes one DAG-CBOR value: maps (as Map with text keys),
// arrays, byte and text strings, integers, booleans, null, and tag 42 (CID).
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
      case 3: need(n); pos += n; return new TextDecoder('utf-8', { fatal: true }).decode(b.subarray(pos - n, pos));
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

// --- protobuf ---------------------------------------------------------

// protoFields reads a protobuf message: field number -> last value
// (varints as numbers, length-delimited as bytes), as protobuf does.
function protoFields(b) {
  const f = new Map();
  let pos = 0;
  while (pos < b.length) {
    let key, v;
    [key, pos] = varint(b, pos);
    const num = Math.floor(key / 8), wire = key % 8;
    if (wire === 0) [v, pos] = varint(b, pos);
    else if (wire === 2) {
      let len;
      [len, pos] = varint(b, pos);
      if (pos + len > b.length) throw new Refused('protobuf field cut short');
      v = b.subarray(pos, pos + len);
      pos += len;
    } else if (wire === 1) { v = null; pos += 8; } else if (wire === 5) { v = null; pos += 4; } else throw new Refused(`protobuf wire type ${wire}`);
    if (pos > b.length) throw new Refused('protobuf cut short');
    f.set(num, v);
  }
  return f;
}

// --- IPNS -------------------------------------------------------------

// nameKey returns the Ed25519 public key an IPNS name (k51..., a
// libp2p-key CID with the key inline, or a 12D3Koo... peer id) holds.
export function nameKey(name) {
  let mh;
  if (name.startsWith('12D3Koo')) mh = baseXDecode(name, b58);
  else {
    const c = CID.parse(name);
    if (c.codec !== codecs.libp2pKey) throw new Refused(`${name} is not an IPNS name (not a libp2p-key CID)`);
    mh = c.bytes.subarray(c.bytes.length - c.digest.length - 2);
  }
  let code, len, pos;
  [code, pos] = varint(mh, 0);
  [len, pos] = varint(mh, pos);
  if (code !== 0x00) throw new Refused('IPNS name: only names holding their key inline (Ed25519) verify here');
  const pk = protoFields(mh.subarray(pos, pos + len));
  if (pk.get(1) !== 1) throw new Refused(`IPNS name: key type ${pk.get(1)}: only Ed25519 verifies here`);
  const key = pk.get(2);
  if (!(key instanceof Uint8Array) || key.length !== 32) throw new Refused('IPNS name: bad Ed25519 key');
  return key;
}

// verifyRecord checks a signed IPNS record (V2 signature, validity) for
// the name and returns {value, sequence, validity, ttlSeconds}.
export async function verifyRecord(name, raw, now = Date.now()) {
  if (raw.length > 10 << 10) throw new Refused('IPNS record over 10 KiB');
  const key = nameKey(name);
  const f = protoFields(raw);
  const data = f.get(9), sig = f.get(8);
  if (!(data instanceof Uint8Array) || !(sig instanceof Uint8Array)) throw new Refused('IPNS record without a V2 signature');
  const msg = new Uint8Array([...te.encode('ipns-signature:'), ...data]);
  const pub = await crypto.subtle.importKey('raw', key, { name: 'Ed25519' }, false, ['verify']);
  if (!(await crypto.subtle.verify({ name: 'Ed25519' }, pub, sig, msg))) {
    throw new Refused(`IPNS record for ${name}: the signature does not verify: refused`);
  }
  const d = decodeCBOR(data);
  if (!(d instanceof Map)) throw new Refused('IPNS record data is not a map');
  const value = new TextDecoder().decode(d.get('Value'));
  const validity = new TextDecoder().decode(d.get('Validity'));
  if (d.get('ValidityType') !== 0) throw new Refused('IPNS record: unknown validity type');
  const until = Date.parse(validity);
  if (!(until > now)) throw new Refused(`IPNS record for ${name}: expired (${validity})`);
  if (f.has(1) && new TextDecoder().decode(f.get(1)) !== value) throw new Refused('IPNS record: V1 value differs from the signed data');
  if (!value.startsWith('/ipfs/')) throw new Refused(`IPNS record value ${value} is not /ipfs/CID`);
  return { value, head: CID.parse(value.slice(6)), sequence: d.get('Sequence'), validity, ttlSeconds: Math.round((d.get('TTL') || 0) / 1e9) };
}

// --- pages and messages -----------------------------------------------

// decodePage checks a page block's shape (docs/FORMAT.md) enough to walk
// it: p, s, e, l (and w on a head).
export function decodePage(cid, bytes) {
  if (cid.codec !== codecs.dagCBOR) throw new Refused(`page ${cid}: not dag-cbor`);
  const m = decodeCBOR(bytes);
  if (!(m instanceof Map) || m.get('v') !== 1) throw new Refused(`page ${cid}: not an rlog page (format v1)`);
  const p = m.get('p'), s = m.get('s'), e = m.get('e'), l = m.get('l');
  if (!Number.isInteger(p) || !Number.isInteger(s) || !Array.isArray(e) || !Array.isArray(l) || e.length === 0) {
    throw new Refused(`page ${cid}: malformed`);
  }
  const link = (x) => {
    if (!Array.isArray(x) || !(x[0] instanceof CID) || !Number.isInteger(x[1])) throw new Refused(`page ${cid}: malformed link`);
    return { cid: x[0], s: x[1] };
  };
  const entries = e.map((x) => {
    if (!(x instanceof Map) || !(x.get('i') instanceof Uint8Array) || x.get('i').length !== 32) throw new Refused(`page ${cid}: malformed entry`);
    const inline = x.get('c'), ref = x.get('r');
    if ((inline instanceof Uint8Array) === (ref instanceof CID) || x.size !== 2) throw new Refused(`page ${cid}: an entry needs exactly one of c (payload) and r (CID)`);
    return { id: x.get('i'), inline, ref };
  });
  const w = m.get('w');
  return { cid, p, s, entries, links: l.map(link), window: w ? w.map(link) : null, head: !!w, last: s + entries.length - 1 };
}

// decodePayload reads an MVDS wire payload: group, timestamp, body (spec
// numbering 6001..6003, or 1..3).
export function decodePayload(b) {
  const f = protoFields(b);
  const group = f.get(6001) ?? f.get(1) ?? new Uint8Array();
  const timestamp = f.get(6002) ?? f.get(2) ?? 0;
  const body = f.get(6003) ?? f.get(3) ?? new Uint8Array();
  return { group, timestamp, body };
}

// messageId is H1: SHA-256("MESSAGE_ID" || group || uint64_le(ts) || body).
export async function messageId(m) {
  const ts = new Uint8Array(8);
  new DataView(ts.buffer).setBigUint64(0, BigInt(m.timestamp), true);
  const pre = te.encode('MESSAGE_ID');
  const all = new Uint8Array(pre.length + m.group.length + 8 + m.body.length);
  all.set(pre, 0);
  all.set(m.group, pre.length);
  all.set(ts, pre.length + m.group.length);
  all.set(m.body, pre.length + m.group.length + 8);
  return sha256(all);
}

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
  async record(name) {
    let raw;
    try {
      raw = await this.get(`/ipns/${name}?format=ipns-record`, 'application/vnd.ipfs.ipns-record', true);
    } catch (e) {
      raw = await this.get(`/routing/v1/ipns/${name}`, 'application/vnd.ipfs.ipns-record', true);
    }
    return verifyRecord(name, raw);
  }
  // message resolves and verifies one entry's payload.
  async message(seq, entry) {
    let payload = entry.inline;
    if (entry.ref) {
      if (entry.ref.codec !== codecs.raw) return { seq, id: entry.id, large: true };
      payload = await this.block(entry.ref);
    }
    const m = decodePayload(payload);
    if (!bytesEqual(await messageId(m), entry.id)) throw new Refused(`message ${seq}: does not match its id: refused`);
    return { seq, id: entry.id, ...m };
  }
}

// previousLink is the link from page pg to page pg.p - 1, or null.
export function previousLink(pg) {
  if (pg.p === 0) return null;
  if (pg.head && pg.window.length > 0) return pg.window[0];
  return pg.links[0];
}

// checkLinked refuses a page that is not the one its link promised.
export function checkLinked(from, link, pg, wantP) {
  if (pg.p !== wantP || pg.s !== link.s || pg.head) throw new Refused(`page ${pg.cid}: not page ${wantP} from ${link.s} as page ${from.p} says`);
  if (pg.last + 1 !== from.s) throw new Refused(`page ${pg.cid}: not contiguous with page ${from.p}`);
}
