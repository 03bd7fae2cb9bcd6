// Issue 20, item 3: a full disk. CONFIG_DIR is a 2 MiB tmpfs, filled to different depths so the
// disk runs out at the state log's append, at the candidate written for `haproxy -c`, or at the
// live files. Whatever the moment: a 503 leaves the proxy and /config as they were, a 200 is
// served, listed and survives kill -9; the log never ends in a torn line, and a torn last line
// is cut at start without losing the lines before it.
import { appendFile, readFile } from 'node:fs/promises'
import { join } from 'node:path'
import t from 'tap'
import type { ConfigAnswer } from '../helpers/api-json.js'
import { type DaemonProcess, daemonProcess, smallFilesystem, stopLeftoverHaproxy } from '../helpers/faults.js'
import { httpGet, httpUpstream } from '../helpers/net.js'

const upstream = await httpUpstream('disk')
const fs = await smallFilesystem(2048)
t.teardown(async () => {
  await stopLeftoverHaproxy(fs.dir)
  await upstream.close()
  await fs.unmount()
})
const logPath = join(fs.dir, 'dfp-state.log')

/** A plain service (made live at run time) or one with its own backend (checked and reloaded); `pad` makes its log line long. */
const service = (name: string, own: boolean, pad: number) => ({
  serviceName: name,
  servicePath: `/${name}`,
  port: String(upstream.port),
  outboundHostname: '127.0.0.1',
  ...(own ? { setResHeader: 'X-Disk full' } : {}),
  ...(pad > 0 ? { userDef: 'x'.repeat(pad) } : {}),
})

const listed = async (daemon: DaemonProcess) => Object.keys((await daemon.call<ConfigAnswer>('config', { type: 'json' })).json ?? {}).sort()
const served = async (daemon: DaemonProcess, name: string) => {
  const reply = await httpGet(daemon.proxyPort, `/${name}`)
  return reply.status === 200 && reply.body.includes('disk')
}

t.test('a 503 is not applied, a 200 is served and survives kill -9, whatever the moment the disk runs out', async (t) => {
  const first = await daemonProcess(fs.dir)
  t.teardown(() => first.kill9())
  const ok: string[] = []
  for (const name of ['base-plain', 'base-own']) {
    t.equal((await first.call('reconfigure', service(name, name.endsWith('own'), 0))).status, 200, `${name} while there is space`)
    ok.push(name)
  }
  const failed: string[] = []
  const reasons: string[] = []
  const statuses = new Map<number, number>()
  // Depths: nothing left, a few bytes, a page, a few pages; each with small and long lines,
  // plain and reloaded services, so the disk runs out at each write of the way.
  let i = 0
  for (const leave of [0, 512, 4096, 12_288, 32_768]) {
    for (const pad of [0, 4000]) {
      for (const own of [false, true]) {
        await fs.drain()
        await fs.fill(leave)
        const name = `s${i++}-${leave}-${pad}-${own ? 'own' : 'plain'}`
        const before = await listed(first)
        const reply = await first.call('reconfigure', service(name, own, pad))
        statuses.set(reply.status, (statuses.get(reply.status) ?? 0) + 1)
        if (reply.status === 200) {
          ok.push(name)
          t.ok(await served(first, name), `${name}: 200 and served`)
          t.ok((await listed(first)).includes(name), `${name}: 200 and listed`)
        } else {
          failed.push(name)
          reasons.push(reply.body)
          t.equal(reply.status, 503, `${name}: a disk that cannot be written is a 503 (${reply.body})`)
          t.notOk(await served(first, name), `${name}: 503 and not served`)
          t.same(await listed(first), before, `${name}: 503 and /config as before`)
        }
        const log = await readFile(logPath, 'utf8')
        t.ok(log.endsWith('\n'), `${name}: the state log ends in a whole line`)
      }
    }
  }
  t.ok((statuses.get(200) ?? 0) > 2 && (statuses.get(503) ?? 0) > 0, `both outcomes seen: ${JSON.stringify([...statuses])}`)
  // The disk ran out at each moment: the state's append, and a file of the configuration.
  t.ok(reasons.some((body) => body.includes('The state could not be saved')), 'a 503 at the save')
  t.ok(reasons.some((body) => /could not be written/.test(body)), 'a 503 at a file of the configuration')

  await first.kill9()
  await fs.drain()
  const second = await daemonProcess(fs.dir, {}, { proxyPort: first.proxyPort })
  t.teardown(() => second.kill9())
  t.same(await listed(second), [...ok].sort(), 'after kill -9: exactly the services answered 200')
  for (const name of ok) t.ok(await served(second, name), `${name} served after the restart`)
  t.notOk(second.lines.some((line) => String(line.msg).includes('line skipped')), 'no state log line skipped')

  // A torn last line (a kill in the middle of an append): cut at start, the lines before kept.
  await second.kill9()
  await appendFile(logPath, '{"put":{"source":"api","params":{"serviceName":"torn')
  const third = await daemonProcess(fs.dir, {}, { proxyPort: first.proxyPort })
  t.teardown(() => third.kill9())
  t.same(await listed(third), [...ok].sort(), 'the torn line is dropped, every line before it kept')
  t.ok(third.lines.some((line) => String(line.msg).includes('torn line')), 'the repair is logged')
  t.equal((await third.call('reconfigure', service('after-torn', false, 0))).status, 200, 'a change after the repair')
  await third.kill9()
  const fourth = await daemonProcess(fs.dir, {}, { proxyPort: first.proxyPort })
  t.teardown(() => fourth.stop())
  t.same(await listed(fourth), [...ok, 'after-torn'].sort(), 'the change after the repair survives kill -9 too')
})
