import { createServer, request, type Agent, type Server } from 'node:http'

/**
 * A Swarm task on loopback: an HTTP server on `host:port` that answers with its name. `/slow`
 * answers after `slowMs`; a POST is answered once its body is read. `stop()` is what the task
 * does on SIGTERM: it stops accepting, finishes what it has in flight, then closes.
 */
export interface Task {
  name: string
  host: string
  /** Requests it received, by method. */
  received: Map<string, number>
  /** Stops it; resolves with how many requests were in flight when it was told to stop. */
  stop: () => Promise<number>
}

export async function startTask(name: string, host: string, port: number, slowMs = 2000): Promise<Task> {
  const received = new Map<string, number>()
  let inFlight = 0
  const server: Server = createServer((req, res) => {
    received.set(req.method ?? '', (received.get(req.method ?? '') ?? 0) + 1)
    inFlight++
    const answer = () => {
      inFlight--
      res.setHeader('x-task', name).end(name)
    }
    req.resume()
    req.on('end', () => (req.url?.endsWith('/slow') ? setTimeout(answer, slowMs) : answer()))
  })
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(port, host, resolve)
  })
  return {
    name,
    host,
    received,
    stop: () =>
      new Promise<number>((resolve) => {
        const atStop = inFlight
        server.close(() => resolve(atStop))
        server.closeIdleConnections()
      }),
  }
}

/** The answer of one request through the proxy: the task's name, or `failed <status|error>`. */
export function askProxy(port: number, path: string, options: { method?: string; agent?: Agent | false; headers?: Record<string, string>; body?: string } = {}): Promise<{ answer: string; setCookie?: string }> {
  return new Promise((resolve) => {
    const req = request({ host: '127.0.0.1', port, path, method: options.method ?? 'GET', agent: options.agent ?? false, headers: options.headers, timeout: 15_000 }, (res) => {
      let body = ''
      res.on('data', (chunk: Buffer) => (body += chunk.toString('utf8')))
      res.on('end', () => {
        const cookie = [res.headers['set-cookie'] ?? []].flat()[0]
        resolve({ answer: res.statusCode === 200 ? body : `failed ${res.statusCode}`, ...(cookie === undefined ? {} : { setCookie: cookie.split(';')[0] }) })
      })
      res.on('error', (err) => resolve({ answer: `failed ${err.message}` }))
    })
    req.on('timeout', () => req.destroy(new Error('timeout')))
    req.on('error', (err) => resolve({ answer: `failed ${err.message}` }))
    req.end(options.body)
  })
}

/**
 * Runs `loop` in `parallel` copies, each pausing `pauseMs` between requests, until `stop()` is
 * called, at most `maxCount` times in all and `maxMs` long, and collects its answers.
 */
export function clientLoad(loop: () => Promise<string>, parallel: number, pauseMs = 20, maxCount = 20_000, maxMs = 180_000) {
  const answers: string[] = []
  let stopped = false
  const deadline = Date.now() + maxMs
  const running = Promise.all(
    Array.from({ length: parallel }, async () => {
      while (!stopped && answers.length < maxCount && Date.now() < deadline) {
        answers.push(await loop())
        if (pauseMs > 0) await new Promise((resolve) => setTimeout(resolve, pauseMs))
      }
    }),
  )
  return {
    answers,
    failed: () => answers.filter((answer) => answer.startsWith('failed')),
    stop: async () => {
      stopped = true
      await running
      return answers
    },
  }
}
