import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import t from 'tap'
import { renderAll } from '../../src/render/index.js'
import { startDaemon } from '../helpers/daemon.js'
import { httpGet, until } from '../helpers/net.js'
import { defined } from '../helpers/checks.js'

// Thousands of random and malformed requests: the daemon answers each with 2xx or 4xx, never 5xx,
// never crashes, and the live configuration always passes `haproxy -c`.
const REQUESTS = Number(process.env.FUZZ_REQUESTS ?? 3000)
const CONCURRENCY = 25

// A deterministic generator, so a failure can be replayed (the seed is printed).
const seed = Number(process.env.FUZZ_SEED ?? Date.now() % 1_000_000)
let state = seed
const random = () => ((state = (state * 1103515245 + 12345) % 2 ** 31) / 2 ** 31)
const pick = <T>(items: readonly T[]): T => defined(items[Math.floor(random() * items.length)], 'a picked item')

const keys = [
  'serviceName', 'servicePath', 'port', 'srcPort', 'reqMode', 'serviceDomain', 'pathType', 'servicePathExclude',
  'outboundHostname', 'reqPathSearchReplace', 'reqPathSearch', 'reqPathReplace', 'timeoutServer', 'timeoutTunnel',
  'isDefaultBackend', 'serviceDomainAlgo', 'aclName', 'distribute', 'replicas', 'aclCondition', 'tasks', '__proto__',
  'constructor', 'unknown', '',
  'serviceHeader', 'userAgent', 'redirectFromDomain', 'redirectUnlessHttpsProto', 'httpsPort', 'srcHttpsPort', 'sessionType',
  'compressionAlgo', 'compressionType', 'discoveryType', 'serviceGroup', 'balanceGroup', 'checkResolvers', 'verifyClientSsl',
  'templateFePath', 'templateBePath', 'userDef', 'proxyInstanceName',
]
const fragments = [
  '', '/', '/a', 'svc', 'svc-1', '80', '8080', '0', '65536', '-1', 'tcp', 'http', 'HTTP', 'sni', 'true', 'yes',
  '*', '*.example.com', 'a.com', 'path_reg', 'path_beg', '^/v[0-9]+/', '%zz', '%', '%0a', '%00', '%0d%0a', '%20', '#',
  '"', "'", '{{', '}}', '{{.X}}', '\\', '(', ')', ',', ':', ';', '..', '../../etc/passwd', 'é', '%F0%9F%92%A5', '%ff%fe',
  '[', ']', '&', '=', '?', '+', '127.0.0.1', '::1', 'if', 'TRUE', 'backend', 'hdr(host)', ' ',
  'X-A:1', 'sticky-server', 'gzip', 'text/html', 'DNS', 'leastconn', 'grp',
]
const value = () => {
  const roll = random()
  if (roll < 0.05) return 'x'.repeat(Math.floor(random() * 20000))
  if (roll < 0.1) return ''
  return Array.from({ length: 1 + Math.floor(random() * 4) }, () => pick(fragments)).join('')
}
const key = () => {
  const base = pick(keys)
  return random() < 0.3 ? `${base}.${pick(['1', '2', '3', '10', '11', '0', '-1', 'x', ''])}` : base
}
// Mostly plausible services so many requests reach haproxy; the rest is noise.
const query = () => {
  const parts: string[] = []
  if (random() < 0.7) parts.push(`serviceName=fz${Math.floor(random() * 12)}`)
  if (random() < 0.6) parts.push(`servicePath=/p${Math.floor(random() * 5)}`)
  if (random() < 0.6) parts.push(`port=${1 + Math.floor(random() * 65534)}`)
  const extra = Math.floor(random() * 6)
  for (let i = 0; i < extra; i++) parts.push(`${key()}=${value()}`)
  if (random() < 0.1) parts.push(parts[0] ?? 'serviceName=dup')
  return parts.sort(() => random() - 0.5).join('&')
}
// The HTTP client refuses raw control characters and spaces in a path; encode those only.
const encode = (raw: string) => raw.replace(/[\x00-\x20\x7f-\uffff"<>`{}|^\\]/gu, (c) => encodeURIComponent(c))

const daemon = await startDaemon()
t.teardown(() => daemon.close())

t.test(`${REQUESTS} random requests, seed ${seed}`, async (t) => {
  const statuses = new Map<number, number>()
  const fiveHundreds: string[] = []
  const configPath = join(daemon.configDir, 'haproxy.cfg')
  const fileCaughtUp = () => until(async () => (await readFile(configPath, 'utf8')) === renderAll(daemon.live.services, daemon.settings).config, 10_000)
  for (let sent = 0; sent < REQUESTS; sent += CONCURRENCY) {
    await Promise.all(
      Array.from({ length: CONCURRENCY }, async () => {
        const endpoint = pick(['reconfigure', 'reconfigure', 'reconfigure', 'remove', 'config', 'reload'])
        const path = `/v1/docker-flow-proxy/${endpoint}?${encode(query())}`
        const reply = await httpGet(daemon.apiPort, path, {}, 60_000)
        statuses.set(reply.status, (statuses.get(reply.status) ?? 0) + 1)
        if (reply.status >= 500 || reply.status < 200) fiveHundreds.push(`${reply.status} ${path.slice(0, 300)} → ${reply.body.slice(0, 300)}`)
      }),
    )
    {
      // After every round: the file HAProxy runs must always pass `haproxy -c`.
      // (the file is the rendering of the live state once changes pause — changes made through
      // the Runtime API write it within 5 s — checked in its validation variant)
      if (!(await fileCaughtUp())) t.fail(`the live file is not the live state's rendering after ${sent} requests`)
      const check = await daemon.port.validate(daemon.live.services)
      if (!check.ok) t.fail(`live config invalid after ${sent} requests: ${check.error}`)
    }
  }
  t.comment(`statuses: ${JSON.stringify(Object.fromEntries([...statuses].sort()))}; reloads: ${daemon.applier.reloads}`)
  t.same(fiveHundreds, [], 'no 5xx and no other non-2xx/4xx answers')
  t.ok([...statuses.keys()].every((s) => s >= 200 && s < 500))
  t.ok((statuses.get(200) ?? 0) > REQUESTS / 10, 'a good share of the requests were applied')
  t.ok((statuses.get(400) ?? 0) > REQUESTS / 10, 'a good share were refused')
  t.ok(await fileCaughtUp(), 'the live file is the live state rendered')
  const live = await readFile(configPath, 'utf8')
  t.same(await daemon.port.validate(daemon.live.services), { ok: true }, 'the live config passes haproxy -c')
  t.equal(live, (await daemon.call('config')).body, '/config shows the live file')
  t.equal((await daemon.call('ping')).status, 200, 'the daemon still answers')
})
