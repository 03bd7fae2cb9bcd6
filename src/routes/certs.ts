import type { FastifyInstance, FastifyReply } from 'fastify'
import { CertificateError, checkCertName, inspectCertificate, type CertificateInfo } from '../certs/pem.js'
import { errors } from '../errors.js'
import type { LiveState } from '../state/live.js'
import { certDir } from '../render/index.js'
import type { Settings } from '../settings.js'
import type { Change } from '../state/registry.js'

export interface CertRoutesOptions {
  settings: Settings
  live: LiveState
  /** Applies a change here and, with distribute=true, on every replica (see proxy.ts). */
  applyEverywhere: (
    endpoint: string,
    params: Record<string, string>,
    change: Change,
    reply: FastifyReply,
    done: Record<string, unknown>,
    request?: { method: string; body: string },
  ) => Promise<unknown>
}

/** The fields a certificate is listed with. The PEM (and its key) is never returned. */
export const certificateFields = (name: string, source: string, path: string, info: CertificateInfo) => ({
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

/**
 * Checks a PEM bundle for `param`; a bad one is a 400 naming the parameter and the problem.
 * Expired certificates pass with a warning for the response.
 */
export function checkCertificate(param: string, pem: string): { info: CertificateInfo; warning: string } {
  try {
    const info = inspectCertificate(pem)
    return { info, warning: info.expired ? `the certificate expired on ${info.validTo}; it is served anyway` : '' }
  } catch (err) {
    if (err instanceof CertificateError) throw errors.invalidParameter(param, err.message)
    throw err
  }
}

/** `PUT /cert` and `/certs`. In their own context: the body of `/cert` is raw PEM whatever its type. */
export async function certRoutes(app: FastifyInstance, { settings, live, applyEverywhere }: CertRoutesOptions): Promise<void> {
  app.removeAllContentTypeParsers()
  app.addContentTypeParser('*', { parseAs: 'string', bodyLimit: 1024 * 1024 }, (_request, body, done) => done(null, body))

  app.put('/cert', async (request, reply) => {
    const query = request.query as Record<string, unknown>
    const first = (v: unknown) => String((Array.isArray(v) ? v[0] : v) ?? '')
    const name = first(query.certName)
    const problem = checkCertName(name)
    if (problem) throw errors.invalidParameter('certName', problem)
    const pem = typeof request.body === 'string' ? request.body : ''
    if (pem.trim() === '') throw errors.invalidParameter('body', 'is empty: send the PEM bundle (certificate and key) as the body')
    const { info, warning } = checkCertificate('body', pem)
    if (warning) request.log.warn({ certificate: name, validTo: info.validTo }, 'expired certificate uploaded')
    const done = { Status: 'OK', Message: warning, Certs: [certificateFields(name, 'uploaded', `${certDir(settings.CONFIG_DIR)}/uploaded/${name}`, info)] }
    const params = { certName: name, ...(first(query.distribute) ? { distribute: first(query.distribute) } : {}) }
    return applyEverywhere('cert', params, { kind: 'cert-put', name, pem }, reply, done, { method: 'PUT', body: pem })
  })

  app.route({
    method: ['GET', 'POST', 'DELETE', 'PATCH', 'OPTIONS'],
    url: '/cert',
    handler: async (_request, reply) => reply.code(405).header('allow', 'PUT').send({ Status: 'NOK', Message: 'Use PUT to upload a certificate', Certs: null }),
  })

  app.all('/certs', async () => {
    const certs = live.services.certificateFiles(certDir(settings.CONFIG_DIR)).map((file) => certificateFields(file.name, file.source, file.path, inspectCertificate(file.pem)))
    return { Status: 'OK', Message: '', Certs: certs }
  })
}
