// Hypercore's figure for rlog's moonshot catch-up (see ../README.md): a core
// of --messages blocks of --size bytes; a reader --behind blocks behind, and
// one from scratch, replicate from the writer over a link that adds --rtt ms
// of round trip (half each way). Prints JSON: seconds until every missing
// block is downloaded and verified (Hypercore verifies each block's Merkle
// proof and the signed tree as it stores it), and bytes on the wire.
'use strict'
const Hypercore = require('hypercore')
const fs = require('fs')
const os = require('os')
const path = require('path')

function arg (name, def) {
  const i = process.argv.indexOf('--' + name)
  return i > 0 ? Number(process.argv[i + 1]) : def
}
const N = arg('messages', 1000000)
const BEHIND = arg('behind', 100000)
const SIZE = arg('size', 256)
const RTT = arg('rtt', 100)
const BATCH = 1000
const SCRATCH = arg('scratch', 1) !== 0

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'rlog-hypercore-'))
const dir = (name) => path.join(tmp, name)

// link pipes two replication streams through a delay of rtt/2 each way and
// counts the bytes; it returns a function that ends the link.
function link (a, b, rtt, counter) {
  const forward = (from, to) => from.on('data', (d) => {
    counter.bytes += d.length
    if (rtt > 0) setTimeout(() => to.write(d), rtt / 2)
    else to.write(d)
  })
  forward(a, b)
  forward(b, a)
  return () => { a.destroy(); b.destroy() }
}

async function catchUp (writer, reader, start, rtt) {
  const counter = { bytes: 0 }
  const t0 = process.hrtime.bigint()
  const end = link(writer.replicate(true), reader.replicate(false), rtt, counter)
  await reader.update({ wait: true })
  await reader.download({ start, end: writer.length }).done()
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9
  if (reader.contiguousLength !== writer.length) throw new Error(`reader has ${reader.contiguousLength} of ${writer.length}`)
  end()
  return { missing: writer.length - start, seconds, bytes: counter.bytes }
}

async function appendBlocks (core, from, to) {
  const body = Buffer.alloc(SIZE)
  for (let i = from; i < to; i += BATCH) {
    const batch = []
    for (let j = i; j < Math.min(to, i + BATCH); j++) batch.push(body)
    await core.append(batch)
  }
}

async function main () {
  const writer = new Hypercore(dir('writer'))
  await writer.ready()
  await appendBlocks(writer, 0, N - BEHIND)
  // The reader behind held the first N-BEHIND blocks, fetched without delay.
  const behind = new Hypercore(dir('behind'), writer.key)
  await behind.ready()
  await catchUp(writer, behind, 0, 0)
  await appendBlocks(writer, N - BEHIND, N)
  const out = { hypercore: require('hypercore/package.json').version, messages: N, size: SIZE, rtt_ms: RTT }
  out.behind = await catchUp(writer, behind, N - BEHIND, RTT)
  const cores = [writer, behind]
  if (SCRATCH) {
    const scratch = new Hypercore(dir('scratch'), writer.key)
    await scratch.ready()
    out.scratch = await catchUp(writer, scratch, 0, RTT)
    cores.push(scratch)
  }
  for (const c of cores) await c.close()
  fs.rmSync(tmp, { recursive: true, force: true })
  console.log(JSON.stringify(out))
}

main().catch((err) => { console.error(err); process.exit(1) })
