import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { get as httpsGet } from 'node:https'
import { connect as tlsConnect } from 'node:tls'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { execa, type ResultPromise } from 'execa'
import { freePort } from './net.js'

export interface PebbleOptions {
  /** The port pebble's validation authority sends HTTP-01 requests to: the proxy's HTTP port. */
  httpPort: number
  /** Lifetime of the certificates pebble issues, in seconds (pebble's default is about 5 years). */
  validitySeconds?: number
}

/**
 * A real ACME server (RFC 8555): Debian's `pebble`, with `pebble-challtestsrv` as its DNS server.
 * Every name resolves to 127.0.0.1 (A only) unless `resolve` says otherwise, so pebble validates
 * HTTP-01 by connecting to 127.0.0.1:httpPort, the proxy. Validation is real: no
 * PEBBLE_VA_ALWAYS_VALID. PEBBLE_VA_NOSLEEP removes pebble's random 0–15 s wait before it
 * validates, and PEBBLE_WFE_NONCEREJECT=0 its random rejection of good nonces (the client
 * retries them, at the cost of seconds), so timings are the proxy's own.
 */
export class Pebble {
  directoryUrl = ''
  /** pebble-challtestsrv's DNS (`127.0.0.1:<port>`): every name is 127.0.0.1 there, tasks.proxy too. */
  dnsServer = ''
  /** PEM of the certificate pebble's API serves (made here by openssl), for ACME_CA_FILE. */
  caFile = ''
  private dir = ''
  private managementPort = 0
  private challtestManagementPort = 0
  private processes: ResultPromise[] = []
  private ca = ''

  async start({ httpPort, validitySeconds }: PebbleOptions): Promise<this> {
    this.dir = await mkdtemp(join(tmpdir(), 'dfp-pebble-'))
    // Pebble's own TLS key pair: a self-signed certificate for 127.0.0.1 and localhost.
    const key = join(this.dir, 'key.pem')
    this.caFile = join(this.dir, 'cert.pem')
    await execa('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', key, '-out', this.caFile, '-days', '2', '-subj', '/CN=pebble', '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost'])

    this.ca = await readFile(this.caFile, 'utf8')

    const dnsPort = await freePort()
    this.dnsServer = `127.0.0.1:${dnsPort}`
    this.challtestManagementPort = await freePort()
    const challtest = execa(
      'pebble-challtestsrv',
      ['-defaultIPv4', '127.0.0.1', '-defaultIPv6', '', '-dns01', `127.0.0.1:${dnsPort}`, '-http01', '', '-https01', '', '-tlsalpn01', '', '-management', `127.0.0.1:${this.challtestManagementPort}`],
      { reject: false, stdio: 'ignore' },
    )
    this.processes.push(challtest)

    const apiPort = await freePort()
    this.managementPort = await freePort()
    const config = {
      pebble: {
        listenAddress: `127.0.0.1:${apiPort}`,
        managementListenAddress: `127.0.0.1:${this.managementPort}`,
        certificate: this.caFile,
        privateKey: key,
        httpPort,
        tlsPort: await freePort(),
        ocspResponderURL: '',
        externalAccountBindingRequired: false,
        ...(validitySeconds ? { certificateValidityPeriod: validitySeconds } : {}),
      },
    }
    await writeFile(join(this.dir, 'config.json'), JSON.stringify(config))
    this.pebbleArgs = ['-config', join(this.dir, 'config.json'), '-dnsserver', `127.0.0.1:${dnsPort}`]
    const pebble = this.runPebble()
    this.processes.push(pebble)
    this.directoryUrl = `https://127.0.0.1:${apiPort}/dir`

    // Ready once both answer (bounded: 10 s).
    for (let i = 0; i < 100; i++) {
      const up = await Promise.all([this.get(this.directoryUrl), fetch(`http://127.0.0.1:${this.challtestManagementPort}/`).then(() => true, () => false)])
      if (up[0] !== undefined && up[1]) return this
      if (pebble.exitCode !== null || challtest.exitCode !== null) break
      await new Promise((resolve) => setTimeout(resolve, 100))
    }
    await this.stop()
    throw new Error('pebble did not start')
  }

  private pebbleArgs: string[] = []

  private runPebble(): ResultPromise {
    return execa('pebble', this.pebbleArgs, {
      reject: false,
      stdio: 'ignore',
      env: { PEBBLE_VA_NOSLEEP: '1', PEBBLE_WFE_NONCEREJECT: '0', PEBBLE_AUTHZREUSE: '0' },
    })
  }

  /**
   * Stops pebble and starts it again on the same ports: it forgets every account and order (it
   * keeps them in memory), as a CA reset would. Resolves once the directory answers again (bounded: 10 s).
   */
  async restartServer(): Promise<void> {
    const old = this.processes.pop()
    old?.kill('SIGTERM')
    await old
    const pebble = this.runPebble()
    this.processes.push(pebble)
    for (let i = 0; i < 100; i++) {
      if ((await this.get(this.directoryUrl)) !== undefined) return
      if (pebble.exitCode !== null) break
      await new Promise((resolve) => setTimeout(resolve, 100))
    }
    throw new Error('pebble did not start again')
  }

  /** The root every certificate pebble issues chains to (a new one each time pebble starts). */
  async root(): Promise<string> {
    const pem = await this.get(`https://127.0.0.1:${this.managementPort}/roots/0`)
    if (!pem) throw new Error('pebble did not give its root')
    return pem
  }

  /** Makes pebble's DNS answer SERVFAIL for `host`: validation of that domain fails. */
  async breakDns(host: string): Promise<void> {
    const reply = await fetch(`http://127.0.0.1:${this.challtestManagementPort}/set-servfail`, {
      method: 'POST',
      body: JSON.stringify({ host: host.endsWith('.') ? host : `${host}.` }),
      signal: AbortSignal.timeout(5000),
    })
    if (!reply.ok) throw new Error(`pebble-challtestsrv refused set-servfail: ${reply.status}`)
  }

  async stop(): Promise<void> {
    for (const process of this.processes) process.kill('SIGTERM')
    await Promise.all(this.processes)
    this.processes = []
    if (this.dir) await rm(this.dir, { recursive: true, force: true })
  }

  /** A GET on pebble's API or management port, trusting the certificate made for it. */
  private get(url: string): Promise<string | undefined> {
    return new Promise((resolve) => {
      const request = httpsGet(url, { ca: this.ca, timeout: 2000 }, (reply) => {
        let body = ''
        reply.on('data', (chunk) => (body += chunk))
        reply.on('end', () => resolve(reply.statusCode === 200 ? body : undefined))
        reply.on('error', () => resolve(undefined))
      })
      request.on('timeout', () => request.destroy())
      request.on('error', () => resolve(undefined))
    })
  }
}

export interface Handshake {
  /** Issuer CN of the served certificate. */
  issuer: string
  /** Its DNS subject alternative names. */
  names: string[]
  fingerprint: string
  /** Whether the chain the proxy sent verifies up to `ca` for `servername`. */
  authorized: boolean
  error?: string
}

/** One TLS handshake with SNI `servername` on 127.0.0.1:`port`; verified against `ca` when given. */
export function handshake(port: number, servername: string, ca?: string, timeoutMs = 5000): Promise<Handshake> {
  return new Promise((resolve, reject) => {
    const socket = tlsConnect({ host: '127.0.0.1', port, servername, ...(ca ? { ca } : {}), rejectUnauthorized: false, ALPNProtocols: ['http/1.1'], timeout: timeoutMs }, () => {
      const cert = socket.getPeerCertificate()
      resolve({
        issuer: String(cert.issuer?.CN ?? ''),
        names: (cert.subjectaltname ?? '').split(', ').filter((n) => n.startsWith('DNS:')).map((n) => n.slice(4)),
        fingerprint: cert.fingerprint256,
        authorized: socket.authorized,
        ...(socket.authorizationError ? { error: String(socket.authorizationError) } : {}),
      })
      socket.end()
    })
    socket.on('timeout', () => socket.destroy(new Error('TLS handshake timed out')))
    socket.on('error', reject)
  })
}
