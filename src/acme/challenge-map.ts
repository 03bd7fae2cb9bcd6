import type { Logger } from 'pino'
import { challengeMapPath } from '../config-paths.js'
import { writeAtomic } from '../files.js'
import type { HaproxyClient } from '../haproxy/client.js'
import type { ChallengePublisher } from './order.js'

// RFC 8555 §8.3: token and key authorization are base64url (plus one "." between the two parts).
const TOKEN = /^[A-Za-z0-9_-]{1,256}$/
const KEY_AUTHORIZATION = /^[A-Za-z0-9_-]{1,256}\.[A-Za-z0-9_-]{1,128}$/

export class ChallengeValueError extends Error {}

/**
 * This replica's pending HTTP-01 answers. The file is written first (a reload loads it), then the
 * running worker gets the entry through the Runtime API (`add map` / `del map`, management.txt
 * §9.3), so publishing a token never reloads HAProxy. The frontend rule that reads the map is
 * rendered while any service asks for a certificate (render/).
 */
export class ChallengeMap implements ChallengePublisher {
  private readonly entries = new Map<string, string>()
  private writing: Promise<void> = Promise.resolve()
  readonly path: string

  constructor(
    configDir: string,
    private readonly haproxy: Pick<HaproxyClient, 'send'>,
    private readonly log: Logger,
  ) {
    this.path = challengeMapPath(configDir)
  }

  /** Writes the (empty) map so a configuration referring to it loads. */
  async init(): Promise<void> {
    await this.write()
  }

  async publish(token: string, keyAuthorization: string): Promise<void> {
    if (!TOKEN.test(token)) throw new ChallengeValueError('token must be base64url (RFC 8555 §8.3)')
    if (!KEY_AUTHORIZATION.test(keyAuthorization)) throw new ChallengeValueError('the key authorization must be <token>.<thumbprint> in base64url')
    if (this.entries.get(token) === keyAuthorization) return
    const existed = this.entries.has(token)
    this.entries.set(token, keyAuthorization)
    await this.write()
    await this.runtime(`${existed ? 'set' : 'add'} map ${this.path} ${token} ${keyAuthorization}`)
  }

  async withdraw(token: string): Promise<void> {
    if (!this.entries.delete(token)) return
    await this.write()
    await this.runtime(`del map ${this.path} ${token}`).catch((err: Error) => this.log.debug({ token, error: err.message }, 'challenge already gone from the running map'))
  }

  get size(): number {
    return this.entries.size
  }

  // Writes one at a time: writeAtomic's temporary file is per process, and the challenges of a
  // multi-domain order are published at once.
  private write(): Promise<void> {
    const lines = [...this.entries].map(([token, value]) => `${token} ${value}\n`).join('')
    this.writing = this.writing.catch(() => undefined).then(() => writeAtomic(this.path, lines, 0o644))
    return this.writing
  }

  private async runtime(command: string): Promise<void> {
    const answer = (await this.haproxy.send(command)).trim()
    if (answer !== '') throw new Error(`HAProxy refused "${command.split(' ').slice(0, 2).join(' ')}": ${answer}`)
  }
}
