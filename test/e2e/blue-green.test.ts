import { createServer, type Server } from 'node:http'
import t from 'tap'
import { startDaemon } from '../helpers/daemon.js'
import { freePort, httpGet, until } from '../helpers/net.js'
import { FakeDns } from '../helpers/swarm.js'

// Blue-green as the Docker Flow CLI's proxy step does it (issue 23): the new colour runs beside
// the old one (`go-demo-green` beside `go-demo-blue`, both found by DNS as Swarm names them),
// `reconfigure?serviceName=go-demo&serviceColor=green&servicePath=/demo&port=…` moves the proxy
// to it, then the old colour is stopped. A client sends GETs through the whole sequence.
const port = await freePort()
const colours = { blue: '127.0.0.11', green: '127.0.0.12' } as const
type Colour = keyof typeof colours

async function task(colour: Colour): Promise<Server> {
  const server = createServer((req, res) => res.setHeader('x-colour', colour).end(colour))
  await new Promise<void>((resolve) => server.listen(port, colours[colour], resolve))
  return server
}
const stop = (server: Server) =>
  new Promise<void>((resolve) => {
    server.close(() => resolve())
    server.closeIdleConnections()
  })

const dns = await new FakeDns().start({ 'go-demo-blue': [colours.blue], 'go-demo-green': [colours.green] })
const daemon = await startDaemon({ RESOLVERS: `nameserver dns ${dns.server}` })
t.teardown(async () => {
  await daemon.close()
  await dns.stop()
})

/** What the CLI sends for the colour it deploys. */
const cliReconfigure = (colour: Colour) => daemon.call('reconfigure', { serviceName: 'go-demo', serviceColor: colour, servicePath: '/demo', port: String(port) })
const colourOf = async () => {
  const reply = await httpGet(daemon.proxyPort, '/demo', {}, 10_000)
  return reply.status === 200 ? reply.body : `failed ${reply.status}`
}

t.test('serviceColor: the servers are the tasks of <serviceName>-<serviceColor>', async (t) => {
  const reply = await daemon.call('reconfigure', { serviceName: 'shade', serviceColor: 'blue', servicePath: '/shade', port: '8080' })
  t.equal(reply.status, 200)
  t.match((await daemon.call('config')).body, /server shade shade-blue:8080 init-addr last,libc,none resolvers docker/, 'looked up when the configuration loads, then by the resolvers')
  const bad = await daemon.call('reconfigure', { serviceName: 'shade', serviceColor: 'blue green', servicePath: '/shade', port: '8080' })
  t.equal(bad.status, 400)
  t.match(String(bad.json?.Message), /serviceColor/)
  t.equal((await daemon.call('remove', { serviceName: 'shade' })).status, 200)
})

t.test('blue → green: 0 failed requests through deploy, switch and removal of the old colour', async (t) => {
  const blue = await task('blue')
  t.equal((await cliReconfigure('blue')).status, 200)
  t.ok(await until(async () => (await colourOf()) === 'blue', 20_000), 'blue serves')
  const answers: string[] = []
  let done = false
  const client = (async () => {
    const deadline = Date.now() + 120_000
    await Promise.all(
      Array.from({ length: 4 }, async () => {
        while (!done && answers.length < 20_000 && Date.now() < deadline) answers.push(await colourOf().catch((err: unknown) => `failed ${String(err)}`))
      }),
    )
  })()
  const green = await task('green')
  const switched = await cliReconfigure('green')
  t.equal(switched.status, 200, switched.body)
  // Answered when the new configuration is live: from now on only green answers.
  const mark = answers.length
  t.ok(await until(async () => answers.length > mark + 50, 60_000), 'requests go on after the switch')
  t.same([...new Set(answers.slice(mark + 8))], ['green'], 'after the switch only green answers')
  await stop(blue)
  const afterStop = answers.length
  t.ok(await until(async () => answers.length > afterStop + 50, 60_000), 'requests go on after blue stopped')
  done = true
  await client
  const failed = answers.filter((a) => a.startsWith('failed'))
  t.comment(`blue-green: ${answers.length} requests, ${failed.length} failed (${answers.filter((a) => a === 'blue').length} blue, ${answers.filter((a) => a === 'green').length} green)`)
  t.same(failed, [], 'no request failed')
  await stop(green)
})
