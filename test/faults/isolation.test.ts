// Issue 12, item 1: one unbindable tcp service must not cost any other service a request.
import t from 'tap'
import { holdPort } from '../helpers/faults.js'
import { startWithUpstream } from '../helpers/daemon.js'
import { freePort, statusOf, tcpEcho } from '../helpers/net.js'
import { errorCode } from '../helpers/checks.js'
import { messageOf } from '../../src/errors.js'

/**
 * Requests `path` every 20 ms until `stop` has resolved and at least `minimum` were sent; counts
 * answers other than 200.
 */
async function probe(port: number, path: string, stop: Promise<unknown>, minimum: number) {
  let done = false
  void stop.finally(() => (done = true))
  const outcome = { sent: 0, failed: 0, errors: new Set<string>() }
  while ((!done || outcome.sent < minimum) && outcome.sent < 5000) {
    outcome.sent++
    const started = Date.now()
    try {
      const status = await statusOf(port, path, false, 3000)
      if (status !== 200) {
        outcome.failed++
        outcome.errors.add(String(status))
      }
    } catch (err) {
      outcome.failed++
      outcome.errors.add(errorCode(err) ?? messageOf(err))
    }
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, 20 - (Date.now() - started))))
  }
  return outcome
}

t.test('a tcp service whose port another process holds is refused; /good/ never fails meanwhile', async (t) => {
  const { daemon, port } = await startWithUpstream('good')
  t.equal((await daemon.call('reconfigure', { serviceName: 'good', servicePath: '/good/', port, outboundHostname: '127.0.0.1' })).status, 200)
  const echo = await tcpEcho('tcp')
  t.teardown(() => echo.close())
  const held = await holdPort(await freePort())
  t.teardown(() => held.release())
  const srcPort = String(held.port)
  const attempts = (async () => {
    const replies = []
    for (let i = 0; i < 3; i++) {
      replies.push(await daemon.call('reconfigure', { serviceName: `p${i}`, reqMode: 'tcp', srcPort, port: String(echo.port), outboundHostname: '127.0.0.1' }))
    }
    return replies
  })()
  const [replies, outcome] = await Promise.all([attempts, probe(daemon.proxyPort, '/good/', attempts, 50)])
  for (const reply of replies) {
    t.ok(reply.status >= 400 && reply.status < 500, `refused with a 4xx (${reply.status})`)
    t.match(reply.json?.Message, srcPort, 'the answer names the port')
  }
  t.equal(outcome.failed, 0, `probes of /good/ failed while the bad service was tried: ${outcome.failed} of ${outcome.sent} (${[...outcome.errors].join(', ')})`)
  t.equal((await daemon.proxy('/good/')).status, 200, 'still served')
})
