import { readFileSync } from 'node:fs'
import { Agent } from 'node:https'
import { rootCertificates } from 'node:tls'
import type { Logger } from 'pino'
import type { AcmeAccount } from './store.js'

/** Where HTTP-01 key authorizations are published while a challenge is pending. */
export interface ChallengePublisher {
  publish(token: string, keyAuthorization: string): Promise<void>
  withdraw(token: string): Promise<void>
}

export interface OrderInput {
  account: AcmeAccount
  domains: string[]
  challenges: ChallengePublisher
  log: Logger
}

type AcmeClient = typeof import('acme-client')

let acmeModule: Promise<AcmeClient> | undefined
let directoryCa: string | undefined

/**
 * acme-client, loaded when a certificate is first ordered: with its dependencies it is about
 * 9 MB of heap and 20 MB of resident memory, which a proxy without ACME does not carry.
 */
function acmeClient(): Promise<AcmeClient> {
  acmeModule ??= import('acme-client').then((acme) => {
    trustIn(acme)
    return acme
  })
  return acmeModule
}

// acme-client shares one HTTP client per process.
function trustIn(acme: AcmeClient): void {
  if (directoryCa !== undefined) acme.axios.defaults.httpsAgent = new Agent({ ca: [...rootCertificates, directoryCa], keepAlive: true })
}

/**
 * Trusts `caFile` (PEM, ACME_CA_FILE) besides the system's roots for the ACME directory: for a
 * private ACME server such as step-ca, or pebble in tests. Read now, so a missing file stops
 * the start.
 */
export function trustDirectoryCa(caFile: string): void {
  if (caFile === '') return
  directoryCa = readFileSync(caFile, 'utf8')
  void acmeModule?.then(trustIn)
}

/** A new account key (ECDSA P-256: small signatures, accepted by every ACME server). */
export async function newAccountKey(): Promise<string> {
  const acme = await acmeClient()
  return (await acme.crypto.createPrivateEcdsaKey('P-256')).toString()
}

/**
 * Orders one certificate for `domains` (RFC 8555 §7.4) with HTTP-01 challenges, registering the
 * account first when it has no URL yet (terms of service agreed: dfp's documentation says so),
 * or when the server answers that it no longer knows it (then once more, with a new URL).
 * Returns the certificate chain and its new private key as one PEM, and the account URL.
 */
export async function orderCertificate(input: OrderInput): Promise<{ pem: string; accountUrl: string }> {
  const { account, log } = input
  try {
    return await orderWith(input, account.url)
  } catch (err) {
    if (!account.url || !isLostAccount(err)) throw err
    // RFC 8555 §7.3: the server no longer knows the account (a CA reset, a test CA restarted):
    // register the key again, which gives a new account URL, and order with it at once.
    log.warn({ accountUrl: account.url, error: describeAcmeError(err) }, 'the ACME server no longer knows the account; registering it again')
    return orderWith(input, '')
  }
}

/** The server's answer when the account of a request is unknown to it (`accountDoesNotExist`, RFC 8555 §7.3 and §6.7). */
export function isLostAccount(err: unknown): boolean {
  return /accountDoesNotExist|\baccount\b.*?\b(not found|does not exist|unknown|no longer exists)|unknown account|no such account/i.test(describeAcmeError(err))
}

async function orderWith({ account, domains, challenges, log }: OrderInput, accountUrl: string): Promise<{ pem: string; accountUrl: string }> {
  const acme = await acmeClient()
  const client = new acme.Client({
    directoryUrl: account.directoryUrl,
    accountKey: account.key,
    ...(accountUrl ? { accountUrl } : {}),
    // Polls for the challenge, order and certificate: from 0.5 s, at most 5 s apart, 12 times
    // (about a minute) before the order is given up and retried later with back-off.
    backoffAttempts: 12,
    backoffMin: 500,
    backoffMax: 5000,
  })
  const [key, csr] = await acme.crypto.createCsr({ commonName: domains[0], altNames: domains }, await acme.crypto.createPrivateEcdsaKey('P-256'))
  const chain = await client.auto({
    csr,
    ...(account.email ? { email: account.email } : {}),
    termsOfServiceAgreed: true,
    challengePriority: ['http-01'],
    // acme-client would first fetch the token itself on port 80 through public DNS; the ACME
    // server's own validation is the one that counts, and dfp publishes before it asks for it.
    skipChallengeVerification: true,
    challengeCreateFn: async (authz, challenge, keyAuthorization) => {
      if (challenge.type !== 'http-01') throw new Error(`${authz.identifier.value}: the server offers no http-01 challenge`)
      log.debug({ domain: authz.identifier.value, token: challenge.token }, 'ACME challenge published')
      await challenges.publish(challenge.token, keyAuthorization)
    },
    challengeRemoveFn: async (_authz, challenge) => {
      await challenges.withdraw(challenge.token)
    },
  })
  return { pem: `${chain.trim()}\n${key.toString().trim()}\n`, accountUrl: client.getAccountUrl() }
}

/** The detail of an ACME failure for logs and the status page: the server's problem document when there is one. */
export function describeAcmeError(err: unknown): string {
  const message = err instanceof Error ? err.message : String(err)
  return message.replaceAll(/\s+/g, ' ').slice(0, 500)
}
