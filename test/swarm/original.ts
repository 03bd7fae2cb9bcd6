// `npx tsx test/swarm/original.ts` (root): dfp and the original Go Docker Flow Proxy as two
// replicas of one service on loopback, as during a rolling update from one to the other, each
// passing distributed changes to the other. The original is ../shared/tools/dfp-go (or
// DFP_GO_DIR), which uses the machine-wide /cfg, /certs and /run/secrets, so this is not part of
// `npm test`: run it on a machine where nothing else uses those paths.
//
// dfp at 127.0.0.22, the original at 127.0.0.23, both with the API on port 18081 (distribute
// sends to every replica's PORT). tasks.proxy → both: dnsmasq for dfp (DNS_SERVERS), and for the
// original (which reads /etc/resolv.conf) a DNS server on 127.53.9.9:53 named by a resolv.conf
// bind-mounted in a mount namespace of its own. Prints TAP; exit 1 when a check failed.
import { execFileSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { makeCertificate } from '../helpers/certs.js'
import { startDaemon } from '../helpers/daemon.js'
import { TestDns } from '../helpers/dns.js'
import { httpUpstream } from '../helpers/net.js'
import { FakeDns } from '../helpers/swarm.js'
import type { ConfigAnswer } from '../helpers/api-json.js'

const goDir = process.env.DFP_GO_DIR ?? resolve(import.meta.dirname, '../../../shared/tools/dfp-go')
const dfpIp = '127.0.0.22'
const goIp = '127.0.0.23'
const goApi = `http://${goIp}:18081/v1/docker-flow-proxy`
let n = 0
let failed = 0
const check = (ok: boolean, what: string) => {
  n++
  if (!ok) failed++
  console.log(`${ok ? 'ok' : 'not ok'} ${n} - ${what}`)
}

const work = mkdtempSync(join(tmpdir(), 'dfp-original-'))
// start.sh with the original's API on goIp instead of 127.0.0.1.
const start = readFileSync(join(goDir, 'start.sh'), 'utf8')
  .replace(/^HERE=.*$/m, `HERE=${goDir}`)
  .replace(/^\. "\$HERE\/env.sh"$/m, `. "$HERE/env.sh"; export IP=${goIp}`)
  .replaceAll('http://127.0.0.1:18081', `http://${goIp}:18081`)
writeFileSync(join(work, 'start.sh'), start, { mode: 0o755 })
writeFileSync(join(work, 'resolv.conf'), 'nameserver 127.53.9.9\n')

const records = { 'tasks.proxy': [dfpIp, goIp] }
const upstream = await httpUpstream('up')
const port = String(upstream.port)
const goDns = await new TestDns(records).start('127.53.9.9', 53)
const dns = await new FakeDns().start(records)
execFileSync('unshare', ['-m', 'sh', '-c', `mount --bind ${work}/resolv.conf /etc/resolv.conf && exec ${work}/start.sh`], { stdio: 'ignore' })
const dfp = await startDaemon({ DNS_SERVERS: dns.server, SERVICE_NAME: 'proxy' }, { apiHost: dfpIp, apiPort: 18081 })
try {
  // dfp → the original
  const toGo = await dfp.call('reconfigure', { serviceName: 'fromdfp', 'servicePath.1': '/a', 'port.1': port, 'servicePath.2': '/b', 'port.2': port, outboundHostname: '127.0.0.1', distribute: 'true' })
  check(toGo.status === 200 && toGo.json.Replicas?.[0]?.Status === 200, `dfp distributes a reconfigure with two destinations to the original (${toGo.status})`)
  const goConfig: Record<string, { ServiceDest?: Array<{ ServicePath: string[] }> }> = await (await fetch(`${goApi}/config?type=json`)).json()
  check(JSON.stringify(goConfig.fromdfp?.ServiceDest?.map((d) => d.ServicePath)) === '[["/a"],["/b"]]', 'the original has both destinations')
  for (const path of ['/a/x', '/b/y']) check((await fetch(`http://127.0.0.1:18080${path}`)).status === 200, `the original routes ${path}`)
  const cert = await fetch(`http://${dfpIp}:18081/v1/docker-flow-proxy/cert?certName=mixed.test&distribute=true`, { method: 'PUT', body: makeCertificate('mixed.test') })
  check(cert.status === 200, `dfp distributes a certificate upload to the original (${cert.status})`)
  const goCerts: { Certs?: Array<{ ProxyServiceName: string }> } = await (await fetch(`${goApi}/certs`)).json()
  check((goCerts.Certs ?? []).some((c) => c.ProxyServiceName === 'mixed.test'), 'the original has the certificate')
  const removed = await dfp.call('remove', { serviceName: 'fromdfp', distribute: 'true' })
  const goAfter: Record<string, unknown> = await (await fetch(`${goApi}/config?type=json`)).json()
  check(removed.status === 200 && !goAfter.fromdfp, 'dfp distributes a remove to the original')

  // the original → dfp
  const query = new URLSearchParams({ serviceName: 'fromgo', 'servicePath.1': '/ga', 'port.1': port, 'servicePath.2': '/gb', 'port.2': port, outboundHostname: '127.0.0.1', distribute: 'true' })
  const toDfp = await fetch(`${goApi}/reconfigure?${query}`)
  check(toDfp.status === 200, `the original distributes a reconfigure to dfp (${toDfp.status})`)
  for (const path of ['/ga/x', '/gb/y']) check((await dfp.proxy(path)).status === 200, `dfp routes ${path}`)
  const goRemove = await fetch(`${goApi}/remove?serviceName=fromgo&distribute=true`)
  check(goRemove.status === 200 && !(await dfp.call<ConfigAnswer>('config', { type: 'json' })).json.fromgo, 'the original distributes a remove to dfp')
  const goCert = await fetch(`${goApi}/cert?certName=fromgo.test&distribute=true`, { method: 'PUT', body: makeCertificate('fromgo.test') })
  console.log(`# the original's own certificate distribution answered ${goCert.status}: ${(await goCert.text()).slice(0, 120)}`)
} finally {
  await dfp.close()
  execFileSync(join(goDir, 'stop.sh'), { stdio: 'ignore' })
  await dns.stop()
  await goDns.stop()
  await upstream.close()
  rmSync(work, { recursive: true, force: true })
}
console.log(`1..${n}`)
process.exit(failed > 0 ? 1 : 0)
