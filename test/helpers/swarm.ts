import { execa, type ResultPromise } from 'execa'
import { writeFile, mkdtemp, rm } from 'node:fs/promises'
import { createServer, type Server } from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { freePort } from './net.js'
import { portOf } from './checks.js'

/**
 * A stand-in for the Docker Flow Swarm Listener, speaking its protocol (user-pain-points §2.10):
 * any method on `get-services` answers the JSON array of flat string maps, `notify-services`
 * answers `{"Status":"OK"}` at once and then sends a create notification for every service to
 * `notifyUrl` (GET, params sorted, `distribute=true` unless the service says otherwise).
 */
export class FakeListener {
  services: Array<Record<string, string>> = []
  /** While set, every call answers this status instead. */
  failWith?: number
  notifyUrl?: string
  calls: string[] = []
  private server?: Server
  port = 0

  async start(host = '127.0.0.1', port = 0): Promise<this> {
    this.server = createServer((req, res) => {
      const path = (req.url ?? '').split('?')[0] ?? ''
      this.calls.push(path)
      if (this.failWith) {
        res.writeHead(this.failWith).end()
        return
      }
      if (path === '/v1/docker-flow-swarm-listener/get-services') {
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(this.services))
      } else if (path === '/v1/docker-flow-swarm-listener/notify-services') {
        res.writeHead(200, { 'content-type': 'application/json' }).end('{"Status":"OK"}')
        void this.notifyAll()
      } else {
        res.writeHead(404).end()
      }
    })
    await new Promise<void>((resolve) => this.server?.listen(port, host, resolve))
    this.port = portOf(this.server)
    return this
  }

  /** Sends a create notification for every service, as the listener does after notify-services. */
  async notifyAll(): Promise<number[]> {
    if (!this.notifyUrl) return []
    return Promise.all(
      this.services.map(async (service) => {
        const params = new URLSearchParams(Object.entries({ distribute: 'true', ...service }).sort(([a], [b]) => (a < b ? -1 : 1)))
        const reply = await fetch(`${this.notifyUrl}?${params}`).catch(() => undefined)
        return reply?.status ?? 0
      }),
    )
  }

  async stop(): Promise<void> {
    await new Promise((resolve) => this.server?.close(resolve))
  }
}

/** dnsmasq on a high port of 127.0.0.1 answering `name → addresses` from a hosts file. */
export class FakeDns {
  port = 0
  private dir = ''
  private process?: ResultPromise

  async start(records: Record<string, string[]>): Promise<this> {
    this.dir = await mkdtemp(join(tmpdir(), 'dfp-dns-'))
    await this.setRecords(records)
    this.port = await freePort()
    this.process = execa(
      'dnsmasq',
      ['--keep-in-foreground', '--no-daemon', '--no-resolv', '--no-hosts', '--bind-interfaces', '--listen-address=127.0.0.1', `--port=${this.port}`, `--addn-hosts=${join(this.dir, 'hosts')}`, '--local-ttl=0', '--user=root', `--pid-file=${join(this.dir, 'pid')}`],
      { reject: false, stdio: 'ignore' },
    )
    // Ready once it answers.
    const { Resolver } = await import('node:dns/promises')
    const resolver = new Resolver({ timeout: 200, tries: 1 })
    resolver.setServers([`127.0.0.1:${this.port}`])
    const name = Object.keys(records)[0] ?? 'localhost'
    for (let i = 0; i < 50; i++) {
      if (await resolver.resolve4(name).then(() => true, () => false)) return this
      await new Promise((resolve) => setTimeout(resolve, 100))
    }
    throw new Error('dnsmasq did not start')
  }

  get server(): string {
    return `127.0.0.1:${this.port}`
  }

  /** Replaces the records; dnsmasq rereads its hosts file on SIGHUP. */
  async setRecords(records: Record<string, string[]>): Promise<void> {
    const lines = Object.entries(records).flatMap(([name, addresses]) => addresses.map((a) => `${a} ${name}`))
    await writeFile(join(this.dir, 'hosts'), `${lines.join('\n')}\n`)
    this.process?.kill('SIGHUP')
    if (this.process) await new Promise((resolve) => setTimeout(resolve, 200))
  }

  async stop(): Promise<void> {
    this.process?.kill('SIGTERM')
    await this.process
    await rm(this.dir, { recursive: true, force: true })
  }
}
