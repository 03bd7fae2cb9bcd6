import type { AddressInfo } from 'node:net'

/** `value`, or a thrown error naming `what` when it is missing: a test stops there instead of reading on with a wrong type. */
export function defined<T>(value: T | null | undefined, what: string): T {
  if (value === undefined || value === null) throw new Error(`${what} is missing`)
  return value
}

/** The port a listening server (HTTP, HTTPS, TCP, TLS) is bound to. */
export function portOf(server: { address(): AddressInfo | string | null }): number {
  const address = server.address()
  if (address === null || typeof address === 'string') throw new Error(`not listening on a TCP port: ${String(address)}`)
  return address.port
}

/** The `code` of a Node.js system error (ECONNREFUSED, …), or undefined. */
export function errorCode(err: unknown): string | undefined {
  return err instanceof Error && 'code' in err && typeof err.code === 'string' ? err.code : undefined
}

/** The `name` an upstream of test/helpers/net.ts answered with (its JSON body), or undefined. */
export function nameInBody(body: string): string | undefined {
  const answer: unknown = JSON.parse(body)
  return typeof answer === 'object' && answer !== null && 'name' in answer && typeof answer.name === 'string' ? answer.name : undefined
}
