import { type Agent, request } from 'node:http'
import { createServer as createHttpServer, type Server } from 'node:http'
import { createServer as createTcpServer, createConnection } from 'node:net'
import { portOf } from './checks.js'

/** A port that was free a moment ago on 127.0.0.1. */
export async function freePort(): Promise<number> {
  const server = createTcpServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const port = portOf(server)
  await new Promise((resolve) => server.close(resolve))
  return port
}

export interface HttpReply {
  status: number
  body: string
  headers: Record<string, string | string[] | undefined>
}

/** One GET (or `method`) on a new connection (no pooling), with any Host header. */
export function httpGet(port: number, path: string, headers: Record<string, string> = {}, timeoutMs = 5000, host = '127.0.0.1', method = 'GET'): Promise<HttpReply> {
  return new Promise((resolve, reject) => {
    const req = request({ host, port, path, method, headers, agent: false, timeout: timeoutMs }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (c) => chunks.push(c))
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8'), headers: res.headers }))
      res.on('error', reject)
    })
    req.on('timeout', () => req.destroy(new Error(`GET ${path} timed out`)))
    req.on('error', reject)
    req.end()
  })
}

/**
 * A reply with its body parsed as JSON, read as `T` (the caller names the endpoint's answer
 * type; src/routes make them), or undefined when the body is not JSON.
 */
export function withJson<T>(reply: HttpReply): HttpReply & { json: T } {
  let json: T
  try {
    // JSON.parse gives `any`: this is where the answer gets the type its endpoint documents.
    json = JSON.parse(reply.body)
  } catch {
    // Not JSON (a plain-text endpoint): a test reading `json` then finds nothing.
    json = undefined as T
  }
  return { ...reply, json }
}

export interface Upstream {
  port: number
  close: () => Promise<void>
}

/** An HTTP server on 127.0.0.1 answering `{"name","path","host"}` for every request. */
export async function httpUpstream(name: string): Promise<Upstream> {
  const server: Server = createHttpServer((req, res) => {
    res.setHeader('content-type', 'application/json')
    res.setHeader('x-upstream', name)
    res.end(JSON.stringify({ name, path: req.url, host: req.headers.host, proto: req.headers['x-forwarded-proto'], method: req.method, headers: req.headers }))
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return {
    port: portOf(server),
    close: () => new Promise((resolve) => server.close(() => resolve())),
  }
}

/** A TCP server on 127.0.0.1 that writes back `<name>:` followed by whatever it receives. */
export async function tcpEcho(name: string): Promise<Upstream> {
  const server = createTcpServer((socket) => {
    socket.on('data', (data) => socket.write(`${name}:${data.toString('utf8')}`))
    socket.on('error', () => socket.destroy())
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return {
    port: portOf(server),
    close: () => new Promise((resolve) => server.close(() => resolve())),
  }
}

/** Sends `message` over a new TCP connection and returns the first answer. */
export function tcpExchange(port: number, message: string, timeoutMs = 5000): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = createConnection({ host: '127.0.0.1', port })
    socket.setTimeout(timeoutMs, () => socket.destroy(new Error('TCP exchange timed out')))
    socket.on('connect', () => socket.write(message))
    socket.on('data', (data) => {
      resolve(data.toString('utf8'))
      socket.end()
    })
    socket.on('error', reject)
  })
}

/** Polls `check` every 100 ms until it is true (errors count as false) or `ms` have passed. */
export async function until(check: () => Promise<boolean>, ms = 10_000): Promise<boolean> {
  const deadline = Date.now() + ms
  while (Date.now() < deadline) {
    if (await check().catch(() => false)) return true
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
  return false
}

/** The status of one GET through `agent` (`false`: a new connection), the body read and dropped. */
export function statusOf(port: number, path: string, agent: Agent | false, timeoutMs = 5000): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, agent, timeout: timeoutMs }, (res) => {
      res.resume()
      res.on('end', () => resolve(res.statusCode ?? 0))
    })
    req.on('timeout', () => req.destroy(new Error('timeout')))
    req.on('error', reject)
    req.end()
  })
}
