import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { get as httpsGetRaw } from 'node:https'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createServer as createTlsServer } from 'node:tls'
import t from 'tap'
import { makeCertificate, servedCertificate } from '../helpers/certs.js'
import { startDaemon, startWithUpstreams } from '../helpers/daemon.js'
import { freePort, httpGet } from '../helpers/net.js'
import { portOf } from '../helpers/checks.js'

// httpsPort/srcHttpsPort: requests arriving on the TLS port go to the service's HTTPS-port
// backend; and an sni service on the TLS port takes it over instead of sharing it (D12).
const folder = await mkdtemp(join(tmpdir(), 'dfp-certs-'))
await mkdir(folder, { recursive: true })
await writeFile(join(folder, 'proxy.test'), makeCertificate('proxy.test'))
const httpPort = await freePort()
const tlsPort = await freePort()
const {
  daemon,
  upstreams: { plain, secure },
} = await startWithUpstreams(['plain', 'secure'], { CERTS_DIR: folder, DEFAULT_PORTS: `${httpPort},${tlsPort}:ssl` })
t.teardown(() => rm(folder, { recursive: true, force: true }))

const overTls = (path: string) =>
  new Promise<{ status: number; name?: string }>((resolve, reject) => {
    const req = httpsGetRaw({ host: '127.0.0.1', port: tlsPort, path, servername: 'proxy.test', rejectUnauthorized: false, agent: false, timeout: 5000 }, (res) => {
      let body = ''
      res.on('data', (d) => (body += d))
      res.on('end', () => resolve({ status: res.statusCode ?? 0, ...(res.statusCode === 200 ? { name: JSON.parse(body).name } : {}) }))
    })
    req.on('timeout', () => req.destroy(new Error('HTTPS request timed out')))
    req.on('error', reject)
  })
const overHttp = async (path: string) => {
  const reply = await httpGet(httpPort, path)
  return { status: reply.status, ...(reply.status === 200 ? { name: JSON.parse(reply.body).name } : {}) }
}

t.test('httpsPort: requests on srcHttpsPort reach the HTTPS-port backend', async (t) => {
  const reply = await daemon.call('reconfigure', {
    serviceName: 'web',
    servicePath: '/web',
    port: String(plain.port),
    httpsPort: String(secure.port),
    srcPort: String(httpPort),
    srcHttpsPort: String(tlsPort),
    outboundHostname: '127.0.0.1',
  })
  t.equal(reply.status, 200, reply.body)
  t.same(await overHttp('/web'), { status: 200, name: 'plain' })
  t.same(await overTls('/web'), { status: 200, name: 'secure' })
  t.match((await daemon.call('config')).body, `backend https-web-be${secure.port}_0`)
})

t.test('a destination with httpsPort only serves HTTPS requests', async (t) => {
  const reply = await daemon.call('reconfigure', { serviceName: 'tls-only', servicePath: '/tls-only', httpsPort: String(secure.port), srcHttpsPort: String(tlsPort), outboundHostname: '127.0.0.1' })
  t.equal(reply.status, 200, reply.body)
  t.same(await overTls('/tls-only'), { status: 200, name: 'secure' })
  t.same(await overHttp('/tls-only'), { status: 503 })
  await daemon.call('remove', { serviceName: 'tls-only' })
})

t.test('an sni service on the TLS port takes the port over: every connection passes through (D12)', async (t) => {
  const pem = makeCertificate('pass.sni.test')
  const upstream = createTlsServer({ cert: pem, key: pem }, (socket) => socket.end('passed'))
  await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise((resolve) => upstream.close(resolve)))
  const port = portOf(upstream)
  const reply = await daemon.call('reconfigure', { serviceName: 'pass', reqMode: 'sni', srcPort: String(tlsPort), port: String(port), servicePath: 'pass.sni.test', outboundHostname: '127.0.0.1' })
  t.equal(reply.status, 200, reply.body)
  const config = (await daemon.call('config')).body
  t.match(config, `# ${tlsPort}:ssl is not bound: frontend service_${tlsPort} binds its port`)
  t.equal([...config.matchAll(new RegExp(`bind \\*:${tlsPort}\\b`, 'g'))].length, 1, 'the port is bound once')
  // With two frontends on the port (the original), the kernel would hand some connections to
  // frontend services, which serves the proxy's own certificate.
  const served = new Set<string>()
  for (let i = 0; i < 12; i++) served.add((await servedCertificate(tlsPort, 'pass.sni.test')).cn)
  t.same([...served], ['pass.sni.test'])
  t.same(await overHttp('/web'), { status: 200, name: 'plain' }, 'plain HTTP still served')
  await daemon.call('remove', { serviceName: 'pass' })
  t.same(await overTls('/web'), { status: 200, name: 'secure' }, 'frontend services binds the port again')
})

t.test('verifyClientSsl: only clients with a certificate signed by CA_FILE pass', async (t) => {
  const client = makeCertificate('client.test')
  const caFile = join(folder, '..', `${Date.now()}-ca.pem`)
  await writeFile(caFile, client.slice(0, client.indexOf('-----END CERTIFICATE-----') + 26))
  t.teardown(() => rm(caFile, { force: true }))
  const tlsPort2 = await freePort()
  const checked = await startDaemon({ CERTS_DIR: folder, DEFAULT_PORTS: `${tlsPort2}:ssl`, CA_FILE: caFile })
  t.teardown(() => checked.close())
  const reply = await checked.call('reconfigure', { serviceName: 'certs', servicePath: '/certs', port: String(plain.port), verifyClientSsl: 'true', outboundHostname: '127.0.0.1' })
  t.equal(reply.status, 200, reply.body)
  const status = (withCertificate: boolean) =>
    new Promise<number>((resolve, reject) => {
      const req = httpsGetRaw(
        { host: '127.0.0.1', port: tlsPort2, path: '/certs', servername: 'proxy.test', rejectUnauthorized: false, agent: false, timeout: 5000, ...(withCertificate ? { cert: client, key: client } : {}) },
        (res) => {
          res.resume()
          res.on('end', () => resolve(res.statusCode ?? 0))
        },
      )
      req.on('timeout', () => req.destroy(new Error('HTTPS request timed out')))
      req.on('error', reject)
    })
  t.equal(await status(true), 200)
  t.equal(await status(false), 403)
})
