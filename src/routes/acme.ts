import type { FastifyInstance } from 'fastify'
import { ChallengeValueError, type ChallengeMap } from '../acme/challenge-map.js'
import type { AcmeManager } from '../acme/manager.js'
import type { AcmeReplicas } from '../acme/replicas.js'
import type { AcmeCertificate } from '../acme/store.js'
import { errors, messageOf } from '../errors.js'
import { firstValue } from '../field-values.js'
import type { LiveState } from '../state/live.js'

export interface AcmeRoutesOptions {
  live: LiveState
  acme: AcmeManager
  challenges: ChallengeMap
  replicas: AcmeReplicas
}

/**
 * How long a replica holds a published challenge answer while its HAProxy does not yet serve a
 * service asking for ACME: the orderer publishes right after its own reload, and a peer may still
 * be loading the same distributed change (without the rule, the answer would not be served).
 */
const RULE_WAIT_MS = 20_000

/** A certificate sent by a peer: the domains it names and the PEM bundle (checked by `receive`). */
function readCertificates(body: string): AcmeCertificate[] {
  let parsed: unknown
  try {
    parsed = JSON.parse(body)
  } catch {
    throw errors.invalidParameter('body', 'must be JSON: {"certificates":[{"domains":[…],"pem":"…"}]}')
  }
  const list = (parsed as { certificates?: unknown })?.certificates
  if (!Array.isArray(list)) throw errors.invalidParameter('body', 'must hold a certificates array')
  return list.map((item, i) => {
    const { domains, pem, issuedAt, directoryUrl } = (item ?? {}) as Record<string, unknown>
    if (!Array.isArray(domains) || domains.length === 0 || !domains.every((d) => typeof d === 'string')) throw errors.invalidParameter(`certificates[${i}].domains`, 'must be a list of domains')
    if (typeof pem !== 'string') throw errors.invalidParameter(`certificates[${i}].pem`, 'must be a PEM bundle')
    return { domains: domains as string[], pem, issuedAt: Number(issuedAt) || Date.now(), directoryUrl: typeof directoryUrl === 'string' ? directoryUrl : '' }
  })
}

/**
 * What replicas ask each other for ACME (src/acme/replicas.ts): publish or withdraw a challenge
 * answer, take certificates the orderer issued, and send this replica's certificates to a replica
 * that asks (only to another address of `tasks.<SERVICE_NAME>`: private keys go to replicas alone,
 * whoever asks).
 * Under the same API_USERS as every other endpoint.
 */
export async function acmeRoutes(app: FastifyInstance, { live, acme, challenges, replicas }: AcmeRoutesOptions): Promise<void> {
  app.removeAllContentTypeParsers()
  app.addContentTypeParser('*', { parseAs: 'string', bodyLimit: 4 * 1024 * 1024 }, (_request, body, done) => done(null, body))

  app.route({
    method: ['PUT', 'DELETE'],
    url: '/acme/challenge',
    handler: async (request) => {
      const token = firstValue((request.query as Record<string, unknown>).token) ?? ''
      // Answered once this replica's HAProxy answers challenges (its rule is live), so the
      // orderer asks the ACME server to validate only when every replica can answer.
      if (request.method === 'PUT' && !(await live.until((services) => services.acmeChallenges, RULE_WAIT_MS))) {
        throw errors.acmeChallengeRefused('no service on this replica asks for ACME yet, so its HAProxy does not answer challenges')
      }
      try {
        if (request.method === 'DELETE') await challenges.withdraw(token)
        else await challenges.publish(token, String(request.body ?? '').trim())
      } catch (err) {
        if (err instanceof ChallengeValueError) throw errors.invalidParameter(request.method === 'DELETE' || err.message.startsWith('token') ? 'token' : 'body', err.message)
        throw errors.acmeChallengeRefused(messageOf(err))
      }
      return { Status: 'OK', Message: '' }
    },
  })

  app.put('/acme/certificates', async (request) => {
    const certificates = readCertificates(String(request.body ?? ''))
    let adopted: number
    try {
      adopted = await acme.receive(certificates)
    } catch (err) {
      throw errors.invalidParameter('body', messageOf(err))
    }
    return { Status: 'OK', Message: '', Adopted: adopted }
  })

  app.post('/acme/share', async (request) => {
    const address = firstValue((request.query as Record<string, unknown>).address) ?? ''
    if (address === '') throw errors.invalidParameter('address', 'is mandatory: the asking replica\'s address')
    if (!(await replicas.isPeer(address))) throw errors.notAReplica(address)
    const sent = await replicas.pushCertificates(acme.held(), [address])
    return { Status: 'OK', Message: '', Sent: sent > 0 ? acme.held().length : 0 }
  })
}
