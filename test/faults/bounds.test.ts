// Issue 12, item 7: bounds on what one request may carry and what is stored per service, each
// refused with a 4xx naming the limit; the state file and the daemon stay small.
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import t from 'tap'
import { startWithUpstream } from '../helpers/daemon.js'
import { httpGet } from '../helpers/net.js'
import type { ConfigAnswer } from '../helpers/api-json.js'

const { daemon, port } = await startWithUpstream('app')
const base = { serviceName: 'bounded', servicePath: '/bounded', port, outboundHostname: '127.0.0.1' }

/** A form POST to reconfigure (bodies carry parameters as the query does). */
function post(body: string) {
  return new Promise<{ status: number; body: string }>((resolve, reject) => {
    import('node:http').then(({ request }) => {
      const req = request(
        { host: '127.0.0.1', port: daemon.apiPort, path: '/v1/docker-flow-proxy/reconfigure', method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', 'content-length': Buffer.byteLength(body) }, agent: false },
        (res) => {
          const chunks: Buffer[] = []
          res.on('data', (c) => chunks.push(c))
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString() }))
        },
      )
      req.on('error', reject)
      req.end(body)
    }, reject)
  })
}

t.test('10 000 parameters in one body are refused, naming the limit', async (t) => {
  const params = new URLSearchParams(base)
  for (let i = 0; i < 10_000; i++) params.set(`unknown${i}`, 'x')
  const reply = await post(params.toString())
  t.ok(reply.status >= 400 && reply.status < 500, `4xx (${reply.status})`)
  t.match(reply.body, /MAX_PARAMETERS|at most \d+/, reply.body.slice(0, 200))
  t.equal((await daemon.call<ConfigAnswer>('config', { type: 'json' })).json.bounded, undefined, 'not stored')
})

t.test('a 900 KB unknown parameter is refused, naming the parameter and the limit', async (t) => {
  const params = new URLSearchParams({ ...base, padding: 'x'.repeat(900_000) })
  const reply = await post(params.toString())
  t.ok(reply.status >= 400 && reply.status < 500, `4xx (${reply.status})`)
  t.match(reply.body, /padding: must be at most \d+ characters/, reply.body.slice(0, 200))
})

t.test('many medium parameters that add up are refused with the per-service limit', async (t) => {
  const params = new URLSearchParams(base)
  for (let i = 0; i < 30; i++) params.set(`note${i}`, 'y'.repeat(4000))
  const reply = await post(params.toString())
  t.ok(reply.status >= 400 && reply.status < 500, `4xx (${reply.status})`)
  t.match(reply.body, /per service/, reply.body.slice(0, 200))
})

t.test('after 20 large posts the state file stays small', async (t) => {
  for (let i = 0; i < 20; i++) await post(new URLSearchParams({ ...base, serviceName: `big${i}`, servicePath: `/big${i}`, padding: 'z'.repeat(900_000) }).toString())
  t.equal((await daemon.call('reconfigure', base)).status, 200, 'an ordinary request is accepted')
  const size = (await readFile(join(daemon.configDir, 'dfp-state.json'))).length
  t.ok(size < 64 * 1024, `state file: ${size} bytes`)
  t.equal((await httpGet(daemon.apiPort, '/v1/docker-flow-proxy/ping')).status, 200)
})
