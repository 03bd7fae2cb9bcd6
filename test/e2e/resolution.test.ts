import t from 'tap'
import { startWithUpstream } from '../helpers/daemon.js'

// Server names are resolved when a configuration loads (libc) and at run time (`resolvers docker`).
// Neither an unknown name nor a DNS server that does not answer may take a route down.
const { daemon, port } = await startWithUpstream('named')

t.test('an unresolvable service is accepted and answers 503 while the others keep working', async (t) => {
  t.equal((await daemon.call('reconfigure', { serviceName: 'ok', servicePath: '/ok', port, outboundHostname: '127.0.0.1' })).status, 200)
  const reply = await daemon.call('reconfigure', { serviceName: 'not-yet-scheduled', servicePath: '/later', port })
  t.equal(reply.status, 200, 'not fatal: the route exists')
  t.match((await daemon.call('config')).body, `server not-yet-scheduled not-yet-scheduled:${port} resolvers docker`)
  t.equal((await daemon.proxy('/later')).status, 503)
  t.equal((await daemon.proxy('/ok')).status, 200)
})

t.test('a name from /etc/hosts keeps working while the DNS server does not answer', async (t) => {
  // RESOLVERS points at 127.0.0.1:53 where nothing answers. Without the long `hold` periods
  // HAProxy puts the server in maintenance 30 s after its last good resolution.
  t.equal((await daemon.call('reconfigure', { serviceName: 'hosts', servicePath: '/hosts', port, outboundHostname: 'localhost' })).status, 200)
  const failures: number[] = []
  for (let second = 0; second < 36; second++) {
    const status = (await daemon.proxy('/hosts')).status
    if (status !== 200) failures.push(second)
    await new Promise((resolve) => setTimeout(resolve, 1000))
  }
  t.same(failures, [], 'answered 200 every second for 36 s')
})
