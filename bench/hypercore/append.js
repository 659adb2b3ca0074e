// Hypercore's figures beside bench/million.sh (see ../README.md): a core on
// disk gets --messages blocks of --size bytes appended in batches of 1,000
// (Hypercore's own batching; each append is flushed to storage before it
// resolves). Prints JSON: seconds, blocks per second, the core's directory
// size on disk against the bodies, and the process's peak RSS.
'use strict'
const Hypercore = require('hypercore')
const fs = require('fs')
const os = require('os')
const path = require('path')
const { execFileSync } = require('child_process')

function arg (name, def) {
  const i = process.argv.indexOf('--' + name)
  return i > 0 ? Number(process.argv[i + 1]) : def
}
const N = arg('messages', 1000000)
const SIZE = arg('size', 256)
const BATCH = 1000

async function main () {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'rlog-hypercore-append-'))
  try {
    const core = new Hypercore(path.join(tmp, 'core'))
    await core.ready()
    const start = process.hrtime.bigint()
    for (let i = 0; i < N; i += BATCH) {
      const batch = []
      for (let j = i; j < Math.min(N, i + BATCH); j++) {
        const b = Buffer.alloc(SIZE, 'x')
        b.write(String(j + 1) + ' ')
        batch.push(b)
      }
      await core.append(batch)
    }
    const secs = Number(process.hrtime.bigint() - start) / 1e9
    await core.close()
    const kb = Number(execFileSync('du', ['-sk', path.join(tmp, 'core')]).toString().split('\t')[0])
    console.log(JSON.stringify({
      messages: N,
      size: SIZE,
      seconds: +secs.toFixed(2),
      msgs_per_s: Math.round(N / secs),
      disk_mib: +(kb / 1024).toFixed(1),
      x_bodies: +((kb * 1024) / (N * SIZE)).toFixed(2),
      peak_rss_mib: Math.round(process.resourceUsage().maxRSS / 1024)
    }))
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true })
  }
}
main().catch((err) => { console.error(err); process.exit(1) })
