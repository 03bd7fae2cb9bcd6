// Issue 21: a differential test of dfp's grammar against the real HAProxy. fast-check generates
// header values, paths, domains, users and passwords from an adversarial alphabet; dfp parses
// and renders them (the daemon's own code), the real haproxy loads the configuration, and a real
// request through it must show that HAProxy served exactly what dfp meant — the header value byte
// for byte and no other header, the path routed, the user authenticated, every other service
// unaffected — unless dfp refused the value with a 400 naming the parameter.
// `npm test` runs VALUES_CASES (default 300, seed 21); `npm run fuzz` runs 20 000 (docs/guarantees.md).
import { type ChildProcess, spawn } from 'node:child_process'
import { once } from 'node:events'
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { request } from 'node:http'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import fc from 'fast-check'
import t from 'tap'
import { credentialEntries } from '../../src/auth/credentials.js'
import { DfpError } from '../../src/errors.js'
import { pathAsSent } from '../../src/haproxy-text.js'
import { renderAll } from '../../src/render/index.js'
import { routeMapFiles } from '../../src/render/maps.js'
import { parseService } from '../../src/service/params.js'
import type { Service } from '../../src/service/types.js'
import { loadSettings } from '../../src/settings.js'
import { ServiceState } from '../../src/state/registry.js'
import { freePort, httpUpstream, until } from '../helpers/net.js'

const CASES = Number(process.env.VALUES_CASES ?? 300)
const SEED = Number(process.env.VALUES_SEED ?? 21)
const BATCH = 150

// The alphabet of issue 21. `,` is SEPARATOR (it splits lists: a documented meaning, not data),
// so it is left out of values; everything else is in.
// Control characters and blank runs are refused by most grammars: they come less often, so that
// most cases reach HAProxy.
const pieces = ['"', "'", '\\', '\\x41', '\\r\\n', '\\"', '%[', '%', '%%', '${', '"${PATH}"', '$PATH', '#', ';', '<<', ' ', 'ü', 'ï', '😀', 'a', 'Z', '/', '(', ')', '{', '}', ':', '[', ']', 'env(PATH)', '%[env(PATH)]', 'file', '-f', '*', '.']
const rare = ['\r', '\n', '\0', '\t', '  ', '\x7f']
const run = fc.tuple(fc.constantFrom(...pieces), fc.integer({ min: 1, max: 40 })).map(([piece, n]) => (n > 30 ? piece.repeat(n) : piece))
const adversarial = fc
  .array(fc.oneof({ weight: 8, arbitrary: fc.constantFrom(...pieces) }, { weight: 1, arbitrary: fc.constantFrom(...rare) }, { weight: 1, arbitrary: run }, { weight: 1, arbitrary: fc.string({ maxLength: 3, unit: 'binary' }) }), { minLength: 1, maxLength: 8 })
  .map((parts) => parts.join('').replaceAll(',', ''))

type Kind = 'header' | 'path' | 'domain' | 'user'
interface Case {
  kind: Kind
  value: string
  password: string
}
// Half the user names are ordinary, so that the adversarial passwords reach HAProxy too.
const userName = fc.oneof(adversarial, fc.stringMatching(/^[A-Za-z0-9._@-]{1,12}$/))
const caseArb: fc.Arbitrary<Case> = fc.oneof(
  fc.record({ kind: fc.constantFrom<Kind>('header', 'path', 'domain'), value: adversarial, password: fc.constant('') }),
  fc.record({ kind: fc.constant<Kind>('user'), value: userName, password: adversarial }),
)

const upstream = await httpUpstream('app')
t.teardown(() => upstream.close())

/** The service parameters of case `i`. */
function paramsOf(c: Case, name: string): Record<string, string> {
  const base = { serviceName: name, port: String(upstream.port), outboundHostname: '127.0.0.1', setResHeader: `X-Case ${name}` }
  switch (c.kind) {
    case 'header':
      return { ...base, servicePath: `/${name}_`, setResHeader: `X-Case ${name},X-V ${c.value}`, addReqHeader: `X-R ${c.value}` }
    case 'path':
      return { ...base, servicePath: `/${name}_${c.value}` }
    case 'domain':
      return { ...base, serviceDomain: `${name}-${c.value}.test` }
    case 'user':
      return { ...base, servicePath: `/${name}_`, users: `${c.value}:${c.password}` }
  }
}

interface Reply {
  status: number
  headers: Record<string, string | string[] | undefined>
  body: string
}
/** One request through HAProxy; undefined when no HTTP client can send it (Node refuses the path or a header). */
function send(port: number, path: string, headers: Record<string, string>): Promise<Reply | undefined> {
  return new Promise((resolve, reject) => {
    let req
    try {
      req = request({ host: '127.0.0.1', port, path, headers, agent: false, timeout: 10_000 }, (res) => {
        const chunks: Buffer[] = []
        res.on('data', (c: Buffer) => chunks.push(c))
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }))
        res.on('error', reject)
      })
    } catch {
      resolve(undefined)
      return
    }
    req.on('timeout', () => req.destroy(new Error(`${path} timed out`)))
    req.on('error', reject)
    req.end()
  })
}
// Node reads header bytes as latin1: the bytes HAProxy sent are recovered that way.
const bytesOf = (header: string | string[] | undefined) => (typeof header === 'string' ? Buffer.from(header, 'latin1').toString('utf8') : undefined)
const basic = (user: string, password: string) => `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`
const RESPONSE_HEADERS = new Set(['x-case', 'x-v', 'x-upstream', 'content-type', 'content-length', 'date', 'connection', 'keep-alive', 'transfer-encoding'])
const UPSTREAM_HEADERS = new Set(['host', 'x-r', 'connection', 'authorization', 'x-forwarded-for'])

const totals = { cases: 0, accepted: 0, refused: 0, unsendable: 0, mismatches: [] as string[], crashes: 0, loads: 0 }
const byKind: Record<Kind, { served: number; refused: number }> = { header: { served: 0, refused: 0 }, path: { served: 0, refused: 0 }, domain: { served: 0, refused: 0 }, user: { served: 0, refused: 0 } }

/** Renders `services` with the daemon's code, loads them into a real haproxy, and returns its port and a stop. */
async function load(services: Service[]): Promise<{ port: number; stop: () => Promise<void>; child: ChildProcess }> {
  const dir = await mkdtemp(join(tmpdir(), 'dfp-values-'))
  const port = await freePort()
  const settings = loadSettings({ CONFIG_DIR: dir, DEFAULT_PORTS: String(port), SECRETS_DIR: join(dir, 'secrets'), HAPROXY_USER: 'none', RESOLVERS: 'nameserver dns 127.0.0.1:53', ERRORFILES_DIR: join(import.meta.dirname, '..', '..', 'haproxy', 'errorfiles') })
  const state = ServiceState.empty().with(services.map((service) => ({ kind: 'put' as const, service })))
  const rendered = renderAll(state, settings)
  for (const file of routeMapFiles(dir, rendered.maps)) {
    await mkdir(dirname(file.path), { recursive: true })
    await writeFile(file.path, file.content)
  }
  await writeFile(join(dir, 'haproxy.cfg'), rendered.config)
  const child = spawn('haproxy', ['-db', '-f', join(dir, 'haproxy.cfg')], { stdio: ['ignore', 'ignore', 'pipe'] })
  let stderr = ''
  child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()))
  const up = await until(async () => child.exitCode === null && (await send(port, '/', {}).then(() => true, () => false)), 15_000)
  if (!up) throw new Error(`haproxy did not load the rendering: ${stderr.slice(0, 2000)}`)
  totals.loads++
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      const exited = once(child, 'exit')
      child.kill('SIGTERM')
      await exited
    }
    await rm(dir, { recursive: true, force: true })
  }
  return { port, stop, child }
}

/** What went wrong with case `c` (service `name`) when HAProxy served it, or undefined. */
async function check(port: number, c: Case, service: Service, name: string): Promise<string | undefined> {
  const served = (reply: Reply | undefined) => reply?.headers['x-case'] === name
  const where = `${c.kind} ${JSON.stringify(c.value)}${c.kind === 'user' ? ` / ${JSON.stringify(c.password)}` : ''}`
  if (c.kind === 'header') {
    const reply = await send(port, `/${name}_`, {})
    if (!served(reply) || reply === undefined) return `${where}: not routed (${reply?.status})`
    if (bytesOf(reply.headers['x-v']) !== c.value) return `${where}: X-V is ${JSON.stringify(bytesOf(reply.headers['x-v']))}`
    const seen = (JSON.parse(reply.body) as { headers: Record<string, string> }).headers
    if (bytesOf(seen['x-r']) !== c.value) return `${where}: the upstream got X-R ${JSON.stringify(seen['x-r'])}`
    const extra = [...Object.keys(reply.headers).filter((h) => !RESPONSE_HEADERS.has(h)), ...Object.keys(seen).filter((h) => !UPSTREAM_HEADERS.has(h))]
    return extra.length > 0 ? `${where}: other headers ${extra.join(', ')}` : undefined
  }
  if (c.kind === 'path') {
    const path = pathAsSent(service.destinations[0]?.servicePath[0] ?? '')
    const reply = await send(port, path, {})
    if (reply === undefined || reply.status === 400) return 'unsendable'
    if (!served(reply)) return `${where}: ${path} not routed (${reply.status})`
    return (JSON.parse(reply.body) as { path: string }).path === path ? undefined : `${where}: the upstream got another path`
  }
  if (c.kind === 'domain') {
    const host = service.destinations[0]?.serviceDomain[0] ?? ''
    const reply = await send(port, '/', { host })
    if (reply === undefined || reply.status === 400) return 'unsendable'
    return served(reply) ? undefined : `${where}: host ${JSON.stringify(host)} not routed (${reply.status})`
  }
  // user: dfp's meaning of `users` is its entries, trimmed, split at the first ':' (docs/usage.md)
  const [entry] = credentialEntries(`${c.value}:${c.password}`)
  if (entry === undefined) return undefined
  if (entry.password === '') {
    // a name without a password and no USERS or usersSecret to take one from is dropped (docs/usage.md):
    // the service has no users and asks for none
    const open = await send(port, `/${name}_`, {})
    return served(open) && open?.status === 200 ? undefined : `${where}: a service without users is not served (${open?.status})`
  }
  const good = await send(port, `/${name}_`, { authorization: basic(entry.name, entry.password) })
  if (good === undefined) return 'unsendable'
  if (!served(good) || good.status !== 200) return `${where}: the user is refused (${good.status})`
  const bad = await send(port, `/${name}_`, { authorization: basic(entry.name, `${entry.password}x`) })
  return bad?.status === 401 ? undefined : `${where}: a wrong password is accepted (${bad?.status})`
}

/** One batch: parse every case (refusals must be 400s naming the parameter), load, send, compare. */
async function runBatch(cases: Case[], offset: number): Promise<void> {
  const accepted: Array<{ c: Case; service: Service; name: string }> = []
  for (const [i, c] of cases.entries()) {
    const name = `${c.kind[0]}${String(offset + i).padStart(5, '0')}`
    totals.cases++
    try {
      accepted.push({ c, service: parseService(paramsOf(c, name), { separator: ',' }), name })
    } catch (err) {
      if (!(err instanceof DfpError) || err.statusCode !== 400 || !/^(setResHeader|addReqHeader|servicePath|serviceDomain|users): /.test(err.message)) {
        totals.mismatches.push(`${c.kind} ${JSON.stringify(c.value)}: refused without a 400 naming the parameter: ${String(err)}`)
      } else {
        totals.refused++
        byKind[c.kind].refused++
      }
    }
  }
  const control = parseService({ serviceName: 'control', servicePath: '/control_', port: String(upstream.port), outboundHostname: '127.0.0.1', setResHeader: 'X-Case control' }, { separator: ',' })
  const haproxy = await load([control, ...accepted.map((a) => a.service)])
  try {
    for (const { c, service, name } of accepted) {
      totals.accepted++
      byKind[c.kind].served++
      const problem = await check(haproxy.port, c, service, name)
      if (problem === 'unsendable') totals.unsendable++
      else if (problem !== undefined) totals.mismatches.push(problem)
    }
    const ctl = await send(haproxy.port, '/control_', {})
    if (ctl?.headers['x-case'] !== 'control') totals.mismatches.push('the control service was not served')
    if (haproxy.child.exitCode !== null || haproxy.child.signalCode !== null) totals.crashes++
  } finally {
    await haproxy.stop()
  }
}

t.test(`${CASES} generated values (seed ${SEED}): HAProxy serves what dfp meant, or dfp refuses with 400`, async (t) => {
  const cases = fc.sample(caseArb, { numRuns: CASES, seed: SEED })
  for (let offset = 0; offset < cases.length; offset += BATCH) await runBatch(cases.slice(offset, offset + BATCH), offset)
  t.comment(`cases ${totals.cases}, accepted ${totals.accepted}, refused ${totals.refused}, unsendable ${totals.unsendable}, haproxy loads ${totals.loads}, crashes ${totals.crashes}, mismatches ${totals.mismatches.length}`)
  t.comment(`served/refused by kind: ${Object.entries(byKind).map(([kind, n]) => `${kind} ${n.served}/${n.refused}`).join(', ')}`)
  t.same(totals.mismatches.slice(0, 20), [], 'no mismatch')
  t.equal(totals.crashes, 0, 'no HAProxy crash')
  t.ok(totals.accepted > totals.cases / 4, 'most kinds of value are served, not just refused')
})
