// Issue 12, item 3: a 200 is durable. The state file lives on a 256 KiB filesystem that fills up;
// the daemon is killed with -9 and started again: every change answered 200 is back, none that
// was answered with an error is.
import t from 'tap'
import { daemonProcess, smallFilesystem, stopLeftoverHaproxy } from '../helpers/faults.js'
import { httpUpstream } from '../helpers/net.js'

const upstream = await httpUpstream('durable')
const fs = await smallFilesystem(256)
t.teardown(async () => {
  await stopLeftoverHaproxy(fs.dir)
  await upstream.close()
  await fs.unmount()
})

t.test('every change answered 200 survives kill -9, none answered with an error comes back', async (t) => {
  const first = await daemonProcess(fs.dir)
  t.teardown(() => first.kill9())
  const service = (name: string) => ({
    serviceName: name,
    servicePath: `/${name}`,
    port: String(upstream.port),
    outboundHostname: '127.0.0.1',
    // Each service adds about 3 KB to the state file, so the disk fills after a few.
    userDef: name.padEnd(3000, '.'),
  })
  const answered = new Map<string, number>()
  for (const name of ['keep-1', 'keep-2', 'gone-1']) answered.set(name, (await first.call('reconfigure', service(name))).status)
  t.same([...answered.values()], [200, 200, 200], 'three services while there is space')
  await fs.fill(24 * 1024)
  const errors: string[] = []
  for (let i = 0; i < 40 && errors.length < 5; i++) {
    const name = `full-${i}`
    const reply = await first.call('reconfigure', service(name))
    answered.set(name, reply.status)
    if (reply.status !== 200) errors.push(`${name}: ${reply.status} ${reply.body}`)
  }
  const removal = await first.call('remove', { serviceName: 'gone-1' })
  t.ok(errors.length >= 1, `the disk filled up: ${errors[0] ?? 'no error at all'}`)
  for (const failure of errors) t.notMatch(failure, /: 4\d\d /, 'a disk that cannot be written is not the request\'s fault (5xx)')

  await first.kill9()
  await fs.drain()
  const second = await daemonProcess(fs.dir, {}, { proxyPort: first.proxyPort })
  t.teardown(() => second.stop())
  const kept = Object.keys((await second.call('config', { type: 'json' })).json ?? {}).sort()
  const wanted = [...answered].filter(([name, status]) => status === 200 && !(name === 'gone-1' && removal.status === 200)).map(([name]) => name).sort()
  t.same(kept, wanted, `after restart: exactly the services answered 200 (remove of gone-1 answered ${removal.status})`)
  const lost = wanted.filter((name) => !kept.includes(name))
  t.equal(lost.length, 0, `changes answered 200 and lost: ${lost.length}`)
})
