import { createServer } from 'node:net'

/**
 * The ports of `ports` that another process listens on: each is bound for a moment on all IPv4
 * addresses, as HAProxy's `bind *:<port>` would. HAProxy finds out only when a reload binds it,
 * and while that reload retries every frontend stops accepting (the old worker's listeners are
 * paused), so a port in use must be found before.
 */
export async function portsInUse(ports: readonly number[]): Promise<number[]> {
  const busy: number[] = []
  for (const port of ports) {
    const free = await new Promise<boolean>((resolve) => {
      const server = createServer()
      server.once('error', () => resolve(false))
      server.listen({ port, host: '0.0.0.0', exclusive: true }, () => server.close(() => resolve(true)))
    })
    if (!free) busy.push(port)
  }
  return busy
}
