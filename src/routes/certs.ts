import type { FastifyInstance } from 'fastify'
import type { AcmeManager, AcmeStatus } from '../acme/manager.js'
import { CertificateError, checkCertName, inspectCertificate, type CertificateInfo } from '../pem.js'
import { certDir } from '../config-paths.js'
import { errors } from '../errors.js'
import type { LiveState } from '../state/live.js'
import type { Settings } from '../settings.js'
import type { ApplyChanges } from './distributed.js'
import { requestParams } from './request-params.js'
import { ok } from './responses.js'

export interface CertRoutesOptions {
  settings: Settings
  live: LiveState
  applyChanges: ApplyChanges
  acme: Pick<AcmeManager, 'status'>
}

const isoOrNull = (ms: number | undefined) => (ms === undefined ? null : new Date(ms).toISOString())

/** A certificate ACME keeps for services: its state, issuer, expiry and when dfp acts on it next. */
const acmeFields = (status: AcmeStatus) => ({
  Domains: status.domains,
  Services: status.services,
  State: status.state,
  Name: status.certificate?.name ?? null,
  Issuer: status.certificate?.issuer ?? null,
  NotBefore: isoOrNull(status.certificate?.notBefore),
  ValidTo: isoOrNull(status.certificate?.notAfter),
  NextAttempt: isoOrNull(status.nextAttemptAt),
  Failures: status.failures,
  LastError: status.lastError ?? null,
})

/** The fields a certificate is listed with. The PEM (and its key) is never returned. */
const certificateFields = (name: string, source: string, path: string, info: CertificateInfo) => ({
  Name: name,
  // The original listed the file name in this field; kept for its clients.
  ProxyServiceName: name,
  Source: source,
  Path: path,
  Domains: info.domains,
  Subject: info.subject,
  ValidTo: info.validTo,
  Expired: info.expired,
  Fingerprint: info.fingerprint,
})
/** A row of `Certs` in the answers of /certs and /cert. */
export type CertificateRow = ReturnType<typeof certificateFields>
/** A row of `Acme` in the answer of /certs. */
export type AcmeRow = ReturnType<typeof acmeFields>

/**
 * Checks a PEM bundle for `param`; a bad one is a 400 naming the parameter and the problem.
 * Expired certificates pass with a warning for the response.
 */
export function checkCertificate(param: string, pem: string): { info: CertificateInfo; warning: string } {
  try {
    const info = inspectCertificate(pem)
    return { info, warning: info.expired ? `the certificate expired on ${info.validTo}; it is served anyway` : '' }
  } catch (err) {
    if (err instanceof CertificateError) throw errors.invalidCertificate(param, err.message)
    throw err
  }
}

/** `PUT /cert` and `/certs`. In their own context: the body of `/cert` is raw PEM whatever its type. */
export async function certRoutes(app: FastifyInstance, { settings, live, applyChanges, acme }: CertRoutesOptions): Promise<void> {
  app.removeAllContentTypeParsers()
  app.addContentTypeParser('*', { parseAs: 'string', bodyLimit: 1024 * 1024 }, (_request, body, done) => done(null, body))

  app.put('/cert', async (request) => {
    // The body is the PEM bundle, so the parameters are the query's only.
    const query = requestParams(request)
    const name = query.certName ?? ''
    const problem = checkCertName(name)
    if (problem) throw errors.invalidParameter('certName', problem)
    const pem = typeof request.body === 'string' ? request.body : ''
    if (pem.trim() === '') throw errors.invalidParameter('body', 'is empty: send the PEM bundle (certificate and key) as the body')
    const { info, warning } = checkCertificate('body', pem)
    if (warning) request.log.warn({ certificate: name, validTo: info.validTo }, 'expired certificate uploaded')
    const done = ok(warning, undefined, { Certs: [certificateFields(name, 'uploaded', `${certDir(settings.CONFIG_DIR)}/uploaded/${name}`, info)] })
    const params = { certName: name, ...(query.distribute ? { distribute: query.distribute } : {}) }
    return applyChanges({ request, changes: [{ kind: 'cert-put', name, pem }], forReplicas: { kind: 'upload', endpoint: 'cert', params, body: pem }, done })
  })

  app.route({
    method: ['GET', 'POST', 'DELETE', 'PATCH', 'OPTIONS'],
    url: '/cert',
    handler: async () => {
      throw errors.certMethodNotAllowed()
    },
  })

  app.all('/certs', async () => {
    const certs = live.services.certificateFiles(certDir(settings.CONFIG_DIR)).map((file) => certificateFields(file.name, file.source, file.path, inspectCertificate(file.pem)))
    // Acme: every domain set services ask ACME for, with or without a certificate yet.
    return { Status: 'OK', Message: '', Certs: certs, Acme: acme.status().map(acmeFields) }
  })
}
