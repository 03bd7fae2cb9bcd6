import { createSocket, type Socket } from 'node:dgram'
import type { Logger } from 'pino'

/** Syslog severities (RFC 5424) as pino levels. */
const LEVELS = ['fatal', 'error', 'error', 'error', 'warn', 'info', 'info', 'debug'] as const

/**
 * One HAProxy syslog datagram (RFC 3164 as `log <address> local0` sends it:
 * `<PRI>Mmm dd hh:mm:ss haproxy[pid]: message`) as a level and the message.
 */
export function parseSyslog(datagram: string): { level: (typeof LEVELS)[number]; message: string } {
  const line = datagram.replace(/\n+$/, '')
  const match = /^<(\d{1,3})>(?:[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d )?(?:[^\s:[]+(?:\[\d+\])?: )?([\s\S]*)$/.exec(line)
  if (!match) return { level: 'info', message: line }
  return { level: LEVELS[Number(match[1]) & 7] ?? 'info', message: match[2] ?? '' }
}

/**
 * DEBUG: receives HAProxy's request logs on DEBUG_LOG_ADDRESS (UDP, loopback) and writes each one
 * into the daemon's log stream, so `docker logs` shows requests next to the daemon's own lines
 * (the original printed them prefixed `HAPRoxy: `).
 */
export class SyslogRelay {
  private socket: Socket | undefined

  constructor(
    private readonly address: string,
    private readonly log: Logger,
  ) {}

  async start(): Promise<void> {
    const [host = '127.0.0.1', port = '1514'] = this.address.split(':')
    const socket = createSocket('udp4')
    socket.on('message', (data) => {
      const { level, message } = parseSyslog(data.toString('utf8'))
      this.log[level]({ haproxy: message }, 'haproxy log')
    })
    await new Promise<void>((resolve, reject) => {
      socket.once('error', reject)
      socket.bind(Number(port), host, () => {
        socket.off('error', reject)
        resolve()
      })
    })
    socket.on('error', (err) => this.log.warn({ err }, 'haproxy log receiver failed'))
    this.socket = socket
  }

  async stop(): Promise<void> {
    const socket = this.socket
    this.socket = undefined
    if (socket) await new Promise<void>((resolve) => socket.close(() => resolve()))
  }
}
