// Issue 12, item 8: API connections time out: an idle connection, one that sends its headers
// slowly and one that sends its body slowly are all closed by the server.
import { createConnection, type Socket } from 'node:net'
import t from 'tap'
import { startDaemon } from '../helpers/daemon.js'

const daemon = await startDaemon()
t.teardown(() => daemon.close())

/** Resolves true when the server closes `socket`, false if it is still open after `ms`. */
function closedWithin(socket: Socket, ms: number): Promise<boolean> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), ms)
    socket.on('close', () => {
      clearTimeout(timer)
      resolve(true)
    })
  })
}

/** A connection that writes `first`, then one byte of `drip` every second until closed. */
function hostile(first: string, drip = '') {
  const socket = createConnection({ host: '127.0.0.1', port: daemon.apiPort })
  socket.on('error', () => undefined)
  let timer: NodeJS.Timeout | undefined
  socket.on('connect', () => {
    if (first) socket.write(first)
    if (drip) timer = setInterval(() => socket.writable && socket.write(drip), 1000)
  })
  socket.on('close', () => clearInterval(timer))
  t.teardown(() => {
    clearInterval(timer)
    socket.destroy()
  })
  return socket
}

t.test('idle, slow-header and slow-body connections are closed by the server', async (t) => {
  const idle = hostile('')
  const slowHeaders = hostile('GET /v1/docker-flow-proxy/ping HTTP/1.1\r\n', 'X')
  const slowBody = hostile('POST /v1/docker-flow-proxy/reconfigure HTTP/1.1\r\nHost: a\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 100000\r\n\r\n', 'a')
  // Far longer than the API's timeouts (src/app.ts apiTimeouts), far shorter than "never".
  const [a, b, c] = await Promise.all([closedWithin(idle, 60_000), closedWithin(slowHeaders, 60_000), closedWithin(slowBody, 60_000)])
  t.ok(a, 'idle connection closed')
  t.ok(b, 'slow headers closed')
  t.ok(c, 'slow body closed')
  t.equal((await daemon.call('ping')).status, 200, 'the API still answers')
})
