import { Agent } from 'node:http'
import t from 'tap'
import type { StatusAnswer } from '../helpers/api-json.js'
import { startWithUpstreams } from '../helpers/daemon.js'
import { httpGet } from '../helpers/net.js'

// Canary by weight (issue 23): two services that set `weight` and claim the same route share it
// in proportion, through one backend holding both services' servers; a weight change goes
// through the Runtime API (`set weight`), not a reload. Real haproxy, real upstreams.
const { daemon, upstreams } = await startWithUpstreams(['stable', 'canary', 'other'])
const agent = new Agent({ keepAlive: true, maxSockets: 8 })
t.teardown(() => agent.destroy())

const reconfigure = async (serviceName: 'stable' | 'canary' | 'other', params: Record<string, string>) => {
  const reply = await daemon.call('reconfigure', { serviceName, servicePath: '/app', port: String(upstreams[serviceName].port), outboundHostname: '127.0.0.1', ...params })
  return reply
}

/** Which upstream answered a GET of /app (keep-alive client), or `failed <status|error>`. */
const answerOf = (): Promise<string> =>
  new Promise((resolve) => {
    void httpGet(daemon.proxyPort, '/app', {}, 10_000)
      .then((reply) => resolve(reply.status === 200 ? String(reply.headers['x-upstream']) : `failed ${reply.status}`))
      .catch((err: unknown) => resolve(`failed ${String(err)}`))
  })

/** `count` GETs, `parallel` at a time; how many each upstream answered, and the failures. */
async function split(count: number, parallel = 8): Promise<Map<string, number>> {
  const counts = new Map<string, number>()
  let sent = 0
  await Promise.all(
    Array.from({ length: parallel }, async () => {
      while (sent < count) {
        sent++
        const answer = await answerOf()
        counts.set(answer, (counts.get(answer) ?? 0) + 1)
      }
    }),
  )
  return counts
}

const reloads = () => daemon.applier.reloads
const workerPid = async () => (await daemon.haproxy.info()).pid

t.test('weight=90 and weight=10 on one route split 2 000 requests 90/10 within ±3 %', async (t) => {
  t.equal((await reconfigure('stable', { weight: '90' })).status, 200)
  t.equal((await reconfigure('canary', { weight: '10' })).status, 200)
  const config = (await daemon.call('config')).body
  t.match(config, `server stable 127.0.0.1:${upstreams.stable.port} weight 90`)
  t.match(config, `server canary 127.0.0.1:${upstreams.canary.port} weight 10`, "the canary's server is in the route's backend")
  const counts = await split(2000)
  t.comment(`2000 requests: stable ${counts.get('stable')}, canary ${counts.get('canary')}`)
  t.same([...counts.keys()].sort(), ['canary', 'stable'], 'no failed request')
  t.ok(Math.abs((counts.get('stable') ?? 0) - 1800) <= 60, `stable got ${counts.get('stable')} of 2000 (1 800 ± 60)`)
  t.ok(Math.abs((counts.get('canary') ?? 0) - 200) <= 60, `canary got ${counts.get('canary')} of 2000 (200 ± 60)`)
})

t.test('a weight change goes through the Runtime API: no reload, same worker', async (t) => {
  const before = { reloads: reloads(), pid: await workerPid() }
  t.equal((await reconfigure('canary', { weight: '50' })).status, 200)
  t.equal((await reconfigure('stable', { weight: '50' })).status, 200)
  t.same({ reloads: reloads(), pid: await workerPid() }, before, 'no reload happened')
  const stat = await daemon.haproxy.send('show servers state')
  // `canary` is first by name: its backend serves the route (fields: …, srv_name, srv_addr, srv_op_state, srv_admin_state, srv_uweight).
  t.match(stat, new RegExp(`canary-be${upstreams.canary.port}_0 \\d+ stable 127\\.0\\.0\\.1 \\d+ \\d+ 50 `), "the worker runs stable's new weight in the shared backend")
  const counts = await split(400)
  t.same([...counts.keys()].sort(), ['canary', 'stable'])
  t.ok(Math.abs((counts.get('canary') ?? 0) - 200) <= 12, `canary got ${counts.get('canary')} of 400 (200 ± 12)`)
})

t.test('moving 100/0 to 0/100 in steps under load fails no request; weight=0 receives nothing', async (t) => {
  const before = reloads()
  let stop = false
  const seen: string[] = []
  const load = (async () => {
    // Bounded: at most 20 000 requests or 120 s, whichever comes first.
    const deadline = Date.now() + 120_000
    await Promise.all(
      Array.from({ length: 4 }, async () => {
        while (!stop && seen.length < 20_000 && Date.now() < deadline) seen.push(await answerOf())
      }),
    )
  })()
  for (const [stable, canary] of [[100, 0], [75, 25], [50, 50], [25, 75], [0, 100]] as const) {
    t.equal((await reconfigure('stable', { weight: String(stable) })).status, 200)
    t.equal((await reconfigure('canary', { weight: String(canary) })).status, 200)
    // Let some requests pass at each step (bounded by the load loop's own limits).
    const mark = seen.length
    while (seen.length < mark + 100 && !stop && seen.length < 20_000) await new Promise((resolve) => setTimeout(resolve, 20))
  }
  stop = true
  await load
  const failed = seen.filter((answer) => answer.startsWith('failed'))
  t.comment(`${seen.length} requests while the weights moved 100/0 → 0/100 in 5 steps: ${failed.length} failed`)
  t.same(failed, [], 'no failed request')
  t.equal(reloads(), before, 'every step went through the Runtime API')
  const after = await split(200)
  t.same([...after.entries()], [['canary', 200]], 'weight=0: stable receives nothing')
  // The status page's data and /metrics show the shared backend's servers with weight and state.
  const backend = `canary-be${upstreams.canary.port}_0`
  const report = (await daemon.call<StatusAnswer>('status', { type: 'json' })).json
  const servers = report.services.find((s) => s.serviceName === 'canary')?.routes[0]?.backends.find((b) => b.name === backend)?.servers
  t.same(servers?.map(({ name, weight, state }) => ({ name, weight, state })), [
    { name: 'canary', weight: 100, state: 'ready' },
    { name: 'stable', weight: 0, state: 'draining' },
  ])
  const metrics = (await daemon.api('/metrics')).body
  t.match(metrics, `haproxy_server_weight{backend="${backend}",server="stable"} 0`)
  t.match(metrics, `haproxy_server_state{backend="${backend}",server="stable",state="draining"} 1`)
  t.match(metrics, `haproxy_server_state{backend="${backend}",server="canary",state="ready"} 1`)
  t.match(metrics, `haproxy_server_state{backend="${backend}",server="canary",state="draining"} 0`)
})

t.test('weight: an integer from 0 to 256, else a 400 naming the parameter; the proxy unaffected', async (t) => {
  // The family: past the top, negative, fractions, other notations, blanks, words, huge.
  const bad = ['257', '300', '999', '1000', '65536', '-1', '-0', '1.5', '0.0', '0x10', '1e2', '+5', ' 10', '10 ', 'ten', '1_0', '９', '9'.repeat(40)]
  for (const weight of bad) {
    const reply = await reconfigure('other', { weight })
    t.equal(reply.status, 400, `weight=${JSON.stringify(weight)} is refused`)
    t.match(String(reply.json?.Message), /weight/, 'the message names the parameter')
  }
  t.equal((await reconfigure('other', { weight: '256', servicePath: '/other' })).status, 200, '256 is the largest weight')
  t.equal((await daemon.proxy('/other')).status, 200)
  t.equal((await daemon.proxy('/app')).status, 200, 'the shared route still answers')
})

t.test('without weights on both, the first by name keeps the route (as before)', async (t) => {
  t.equal((await daemon.call('remove', { serviceName: 'canary' })).status, 200)
  t.equal((await reconfigure('canary', {})).status, 200)
  const counts = await split(40)
  t.same([...counts.entries()], [['canary', 40]], 'canary, first by name, takes the route: only weighted services share')
  const config = (await daemon.call('config')).body
  t.equal(config.match(/^ {4}server stable /gm)?.length, 1, "stable's server is in its own backend only")
})
