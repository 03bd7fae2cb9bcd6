import { createHash, timingSafeEqual } from 'node:crypto'
import type { FastifyRequest } from 'fastify'
import { encrypt } from 'unixcrypt'
import { errors } from '../errors.js'
import { credentialEntries } from './credentials.js'

/** A user of the control API: a clear-text password, or a SHA-crypt hash (`$6$…`, `$5$…`). */
export interface ApiUser {
  name: string
  password: string
  hashed: boolean
}

// crypt(3) SHA-256/SHA-512 strings as `openssl passwd -5/-6` and mkpasswd write them:
// `$id$[rounds=N$]salt$hash`, salt and hash in the crypt alphabet [./0-9A-Za-z].
const shaCrypt = /^\$(5|6)\$(rounds=\d+\$)?[./0-9A-Za-z]{1,16}\$[./0-9A-Za-z]+$/

/**
 * Reads API_USERS (or the secret `dfp_api_users`): `user:password` entries separated by commas
 * or newlines; a password that looks like a SHA-crypt string is a hash. Throws naming the
 * first bad entry.
 */
export function parseApiUsers(text: string): ApiUser[] {
  const users: ApiUser[] = []
  for (const { entry, name, password, hasColon } of credentialEntries(text)) {
    if (!hasColon || name === '' || password === '') throw new Error(`entry ${JSON.stringify(hasColon ? name : entry.slice(0, 20))} must be user:password`)
    const hashed = password.startsWith('$')
    if (hashed && !shaCrypt.test(password)) throw new Error(`the password of ${JSON.stringify(name)} starts with "$" but is not a SHA-crypt hash ($5$… or $6$…)`)
    users.push({ name, password, hashed })
  }
  return users
}

const digest = (value: string) => createHash('sha256').update(value, 'utf8').digest()
/** Equal in constant time whatever the lengths: both sides are hashed to 32 bytes first. */
const sameText = (a: string, b: string) => timingSafeEqual(digest(a), digest(b))

// RFC 7617 §2: credentials = "Basic" 1*SP token68 (RFC 7235 §2.1: token68 = 1*( ALPHA / DIGIT /
// "-" / "." / "_" / "~" / "+" / "/" ) *"="); the scheme is case-insensitive.
const basicCredentials = /^Basic +([A-Za-z0-9\-._~+/]+=*) *$/i
const KEPT_VERIFIED = 64

/**
 * Checks `Authorization: Basic` headers against API_USERS. Every user is compared (no early
 * exit on the name) and every comparison is constant-time. A SHA-crypt verification costs
 * thousands of hash rounds, so headers that passed are remembered (as their SHA-256) for
 * the next requests.
 */
export class ApiAuthenticator {
  private readonly verified = new Set<string>()

  constructor(readonly users: readonly ApiUser[]) {}

  get enabled(): boolean {
    return this.users.length > 0
  }

  /** The user name the header proves, or undefined. */
  check(header: string | undefined): string | undefined {
    const match = basicCredentials.exec(header ?? '')
    if (!match) return undefined
    const decoded = Buffer.from(match[1] as string, 'base64').toString('utf8')
    const colon = decoded.indexOf(':')
    if (colon === -1) return undefined
    const name = decoded.slice(0, colon)
    const password = decoded.slice(colon + 1)
    const key = digest(decoded).toString('hex')
    let found: string | undefined
    for (const user of this.users) {
      const nameMatches = sameText(user.name, name)
      let passwordMatches: boolean
      if (!user.hashed) passwordMatches = sameText(user.password, password)
      else if (nameMatches && this.verified.has(key)) passwordMatches = true
      else passwordMatches = nameMatches && sameText(encrypt(password, user.password), user.password)
      if (nameMatches && passwordMatches) found = user.name
      if (nameMatches && passwordMatches && user.hashed && !this.verified.has(key)) {
        if (this.verified.size >= KEPT_VERIFIED) this.verified.clear()
        this.verified.add(key)
      }
    }
    return found
  }

  /** A Fastify onRequest hook: 401 with a Basic challenge unless `isPublic(request)` or the credentials pass. */
  hook(isPublic: (request: FastifyRequest) => boolean) {
    return async (request: FastifyRequest) => {
      if (isPublic(request)) return
      const user = this.check(request.headers.authorization)
      if (user !== undefined) return
      throw errors.authenticationRequired()
    }
  }
}
