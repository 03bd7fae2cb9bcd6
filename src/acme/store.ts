import { messageOf } from '../errors.js'
import { readFile, rename } from 'node:fs/promises'
import { X509Certificate } from 'node:crypto'
import { join } from 'node:path'
import type { Logger } from 'pino'
import { inspectCertificate } from '../pem.js'
import { writeAtomic } from '../files.js'
import { certificateName, domainSetKey } from '../service/acme-request.js'

/** An ACME account: one per directory and contact email. */
export interface AcmeAccount {
  directoryUrl: string
  email: string
  /** PEM of the account's private key. */
  key: string
  /** The account's URL at the directory (its `kid`), once registered. */
  url: string
}

/** An issued certificate: the chain and its private key in one PEM, as HAProxy loads it. */
export interface AcmeCertificate {
  domains: string[]
  pem: string
  issuedAt: number
  /** The ACME directory that issued it: a certificate of another directory is replaced. */
  directoryUrl: string
}

/** A certificate with the facts read from it. */
export interface AcmeCertificateView extends AcmeCertificate {
  key: string
  name: string
  notBefore: number
  notAfter: number
  issuer: string
  fingerprint: string
}

/** Reads the facts of an issued bundle; throws when it is not a certificate with its key. */
export function viewOf(certificate: AcmeCertificate): AcmeCertificateView {
  const info = inspectCertificate(certificate.pem)
  const leaf = new X509Certificate(certificate.pem)
  const issuerCn = /^CN=(.*)$/m.exec(leaf.issuer)?.[1] ?? leaf.issuer.replaceAll('\n', ', ')
  return {
    ...certificate,
    key: domainSetKey(certificate.domains),
    name: certificateName(certificate.domains),
    notBefore: Date.parse(leaf.validFrom),
    notAfter: Date.parse(leaf.validTo),
    issuer: issuerCn,
    fingerprint: info.fingerprint,
  }
}

/** Failed orders in a row for a domain set, kept so a restart keeps backing off. */
export interface AcmeFailure {
  key: string
  failures: number
  lastFailureAt: number
  error: string
}

interface SavedAcme {
  format: 1
  accounts: AcmeAccount[]
  certificates: AcmeCertificate[]
  failures?: AcmeFailure[]
}

export interface LoadedAcme {
  accounts: AcmeAccount[]
  certificates: AcmeCertificateView[]
  failures: AcmeFailure[]
}

/**
 * ACME's durable part (`CONFIG_DIR/dfp-acme.json`, mode 600: it holds private keys): the account
 * keys and the issued certificates, so a restart serves them and renews them on schedule instead
 * of ordering again.
 */
export class AcmeStore {
  readonly path: string

  constructor(
    configDir: string,
    private readonly log: Logger,
  ) {
    this.path = join(configDir, 'dfp-acme.json')
  }

  /** The saved accounts and certificates; a missing file is empty, a corrupt one moved aside. */
  async load(): Promise<LoadedAcme> {
    let saved: SavedAcme
    try {
      saved = JSON.parse(await readFile(this.path, 'utf8')) as SavedAcme
      if (saved?.format !== 1 || !Array.isArray(saved.accounts) || !Array.isArray(saved.certificates)) throw new Error('not a format 1 ACME file')
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { accounts: [], certificates: [], failures: [] }
      const aside = `${this.path}.corrupt-${Date.now()}`
      await rename(this.path, aside).catch(() => undefined)
      this.log.error({ err, movedTo: aside }, 'ACME file unreadable; moved aside, certificates will be ordered again')
      return { accounts: [], certificates: [], failures: [] }
    }
    const certificates: AcmeCertificateView[] = []
    for (const saved_ of saved.certificates) {
      try {
        certificates.push(viewOf({ domains: saved_.domains.map(String), pem: String(saved_.pem), issuedAt: Number(saved_.issuedAt), directoryUrl: String(saved_.directoryUrl ?? '') }))
      } catch (err) {
        this.log.warn({ domains: saved_?.domains, error: messageOf(err) }, 'saved ACME certificate skipped')
      }
    }
    const accounts = saved.accounts.filter((a) => typeof a?.key === 'string' && typeof a.directoryUrl === 'string')
    this.log.info({ accounts: accounts.length, certificates: certificates.length, path: this.path }, 'ACME state loaded')
    const failures = (saved.failures ?? []).filter((f) => typeof f?.key === 'string' && Number.isFinite(f.failures) && Number.isFinite(f.lastFailureAt))
    return { accounts, certificates, failures }
  }

  async save(accounts: readonly AcmeAccount[], certificates: readonly AcmeCertificate[], failures: readonly AcmeFailure[]): Promise<void> {
    const saved: SavedAcme = {
      format: 1,
      accounts: [...accounts],
      certificates: certificates.map(({ domains, pem, issuedAt, directoryUrl }) => ({ domains, pem, issuedAt, directoryUrl })),
      failures: [...failures],
    }
    await writeAtomic(this.path, `${JSON.stringify(saved, null, 1)}\n`, 0o600)
  }
}
