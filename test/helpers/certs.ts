import { execFileSync } from 'node:child_process'
import { X509Certificate } from 'node:crypto'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { connect } from 'node:tls'

/** A self-signed PEM bundle (certificate then key) for `cn`, made by openssl; `days < 0` has expired. */
export function makeCertificate(cn: string, days = 2): string {
  const dir = mkdtempSync(join(tmpdir(), 'dfp-cert-'))
  const key = join(dir, 'key.pem')
  try {
    if (days > 0) {
      execFileSync('openssl', [
        'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', String(days),
        '-keyout', key, '-out', join(dir, 'cert.pem'),
        '-subj', `/CN=${cn}`, '-addext', `subjectAltName=DNS:${cn}`,
      ], { stdio: 'ignore' })
    } else {
      // `req -x509` refuses negative days; a request signed by its own key accepts them.
      execFileSync('openssl', ['req', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', join(dir, 'csr.pem'), '-subj', `/CN=${cn}`], { stdio: 'ignore' })
      execFileSync('openssl', ['x509', '-req', '-in', join(dir, 'csr.pem'), '-signkey', key, '-out', join(dir, 'cert.pem'), '-days', String(days)], { stdio: 'ignore' })
    }
    return readFileSync(join(dir, 'cert.pem'), 'utf8') + readFileSync(join(dir, 'key.pem'), 'utf8')
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

export interface ServedCertificate {
  cn: string
  fingerprint: string
  alpn: string | false
}

/** Opens a TLS connection with SNI `servername` and tells which certificate was served. */
export function servedCertificate(port: number, servername: string, alpn = ['h2', 'http/1.1']): Promise<ServedCertificate> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port, servername, rejectUnauthorized: false, ALPNProtocols: alpn, timeout: 5000 }, () => {
      const cert = socket.getPeerCertificate()
      resolve({ cn: String(cert.subject?.CN ?? ''), fingerprint: cert.fingerprint256, alpn: socket.alpnProtocol ?? false })
      socket.end()
    })
    socket.on('timeout', () => socket.destroy(new Error('TLS handshake timed out')))
    socket.on('error', reject)
  })
}

/** One HTTPS GET on a new connection; resolves with the status. */
export function httpsGet(port: number, servername: string, path: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port, servername, rejectUnauthorized: false, ALPNProtocols: ['http/1.1'], timeout: 5000 }, () => {
      socket.write(`GET ${path} HTTP/1.1\r\nHost: ${servername}\r\nConnection: close\r\n\r\n`)
    })
    let data = ''
    socket.on('data', (chunk) => (data += chunk.toString('utf8')))
    socket.on('end', () => resolve(Number(/^HTTP\/1\.[01] (\d{3})/.exec(data)?.[1] ?? 0)))
    socket.on('timeout', () => socket.destroy(new Error('HTTPS request timed out')))
    socket.on('error', reject)
  })
}

export const fingerprintOf = (pem: string) => new X509Certificate(pem).fingerprint256
