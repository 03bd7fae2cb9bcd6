// Issue 12, item 9: temporary files are cleaned: leftovers of a previous run at start, and the
// candidates and temporary files of writes that failed on a full disk.
import { mkdir, readdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import t from 'tap'
import { smallFilesystem } from '../helpers/faults.js'
import { startDaemon } from '../helpers/daemon.js'
import { httpUpstream } from '../helpers/net.js'

const fs = await smallFilesystem(256)
const upstream = await httpUpstream('app')
t.teardown(async () => {
  await upstream.close()
  await fs.unmount()
})

const temporary = (name: string) => /^candidate-|\.tmp-\d+$/.test(name)
async function temporaryFiles(dir: string, depth = 2): Promise<string[]> {
  const found: string[] = []
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    if (temporary(entry.name)) found.push(join(dir, entry.name))
    else if (entry.isDirectory() && depth > 0) found.push(...(await temporaryFiles(join(dir, entry.name), depth - 1)))
  }
  return found
}

t.test('leftovers of a killed daemon are removed at start; failed writes leave nothing', async (t) => {
  await mkdir(join(fs.dir, 'maps'), { recursive: true })
  for (const name of ['candidate-4242-1.cfg', 'candidate-4242-2-path.map', 'haproxy.cfg.tmp-4242', 'dfp-state.json.tmp-4242', 'maps/path.map.tmp-4242']) {
    await writeFile(join(fs.dir, name), '')
  }
  const daemon = await startDaemon({}, { configDir: fs.dir })
  t.teardown(() => daemon.close({ keepConfig: true }))
  t.same(await temporaryFiles(fs.dir), [], 'none left after start')

  await fs.fill(8 * 1024)
  const statuses: number[] = []
  for (let i = 0; i < 8; i++) {
    statuses.push((await daemon.call('reconfigure', { serviceName: `s${i}`, servicePath: `/s${i}`, port: String(upstream.port), outboundHostname: '127.0.0.1', userDef: 'u'.repeat(3000) })).status)
  }
  t.ok(statuses.some((s) => s !== 200), `the disk filled up (${statuses.join(' ')})`)
  t.same(await temporaryFiles(fs.dir), [], 'no candidate or temporary file left after the failures')
})
