import { messageOf } from './errors.js'
import { createPrivateKey, X509Certificate } from 'node:crypto'

/** What the proxy tells about a certificate; never the key. */
export interface CertificateInfo {
  subject: string
  /** Subject CN and DNS subject alternative names. */
  domains: string[]
  validTo: string
  expired: boolean
  fingerprint: string
}

export class CertificateError extends Error {}

// PEM blocks (RFC 7468): "-----BEGIN <label>-----" base64 "-----END <label>-----".
const certificateBlock = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/
const keyBlock = /-----BEGIN ((?:RSA |EC |ENCRYPTED )?PRIVATE KEY)-----[\s\S]+?-----END \1-----/

/**
 * Checks a PEM bundle as HAProxy wants it (certificate, chain, private key in one file): it must
 * parse, hold an unencrypted key that matches the first certificate. An expired certificate is
 * accepted; `expired` says so.
 */
export function inspectCertificate(pem: string, now = new Date()): CertificateInfo {
  const certText = certificateBlock.exec(pem)?.[0]
  if (!certText) throw new CertificateError('no PEM certificate (-----BEGIN CERTIFICATE-----) found')
  const keyMatch = keyBlock.exec(pem)
  if (!keyMatch) throw new CertificateError('no PEM private key found (HAProxy needs the key in the same file)')
  if (keyMatch[1] === 'ENCRYPTED PRIVATE KEY') throw new CertificateError('the private key is encrypted; HAProxy cannot load it')
  let cert: X509Certificate
  try {
    cert = new X509Certificate(certText)
  } catch (err) {
    throw new CertificateError(`the certificate does not parse: ${messageOf(err)}`)
  }
  let matches: boolean
  try {
    matches = cert.checkPrivateKey(createPrivateKey(keyMatch[0]))
  } catch (err) {
    throw new CertificateError(`the private key does not parse: ${messageOf(err)}`)
  }
  if (!matches) throw new CertificateError('the private key does not match the certificate')
  const cn = /(?:^|\n)CN=([^\n]+)/.exec(cert.subject)?.[1]
  const sans = (cert.subjectAltName ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.startsWith('DNS:'))
    .map((s) => s.slice(4))
  const validTo = new Date(cert.validTo)
  return {
    subject: cert.subject.replaceAll('\n', ', '),
    domains: [...new Set([...(cn ? [cn] : []), ...sans])],
    validTo: validTo.toISOString(),
    expired: validTo.getTime() < now.getTime(),
    fingerprint: cert.fingerprint256,
  }
}

/** Names of uploaded certificates: one plain file name, so it cannot leave its folder. */
export function checkCertName(name: string): string | undefined {
  if (name === '') return 'is mandatory'
  if (name.length > 200) return 'must be at most 200 characters'
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(name) || name.includes('..')) {
    return 'must be a file name of letters, digits, ".", "_" and "-" (no path)'
  }
  return undefined
}
