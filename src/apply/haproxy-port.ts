import { lookup, Resolver } from 'node:dns/promises'
import { mkdir } from 'node:fs/promises'
import { isIP } from 'node:net'
import type { Logger } from 'pino'
import { HaproxyClient } from '../haproxy/client.js'
import { HaproxyMaster } from '../haproxy/master.js'
import { portsInUse } from '../haproxy/port-probe.js'
import { sendCommands } from '../haproxy/runtime-delta.js'
import { validateConfig } from '../haproxy/validate.js'
import { type Rendered, renderAll, serverStatePath, statsSocketPath } from '../render/index.js'
import { commandText, type RuntimeCommand } from '../render/spares.js'
import { routeMapFiles } from '../render/maps.js'
import type { Settings } from '../settings.js'
import type { ServiceState } from '../state/registry.js'
import { ArtefactWriter } from './artefacts.js'
import type { HaproxyPort, LoadVerdict, Verdict } from './port.js'

// How long a spare's host name may take to resolve before the change goes through a reload.
const SPARE_LOOKUP_MS = 250

/**
 * A dynamic server cannot use `resolvers`, and HAProxy would resolve its name by itself,
 * preferring IPv6 (`localhost` → `::1`). The name of an `add server` is resolved here instead,
 * to an IPv4 address first, within SPARE_LOOKUP_MS: a name of /etc/hosts from the file (the
 * system lookup), any other with the DNS servers (DNS_SERVERS, else the system's) and no retry.
 * In Swarm, Docker's DNS often does not know a service yet when the listener announces it and
 * passes the query on to servers that may never answer; waiting for them stalled each new
 * service 5 s (docs/swarm.md "Reloads and DNS"). A name that does not resolve in time throws,
 * and the change goes through validation and a reload instead, which looks no name up
 * (`init-addr last,none`).
 */
async function withResolvedHost(command: RuntimeCommand, dnsServers: readonly string[], hostsFileNames: ReadonlySet<string>): Promise<string> {
  if (typeof command === 'string' || isIP(command.host.replace(/^\[|\]$/g, '')) !== 0) return commandText(command)
  const { host } = command
  let address: string | undefined
  if (hostsFileNames.has(host.toLowerCase())) {
    address = (await lookup(host, { family: 0, order: 'ipv4first' })).address
  } else {
    const resolver = new Resolver({ timeout: SPARE_LOOKUP_MS, tries: 1 })
    if (dnsServers.length > 0) resolver.setServers(dnsServers)
    address = (await resolver.resolve4(host))[0]
  }
  if (address === undefined) throw new Error(`${host} has no IPv4 address`)
  return commandText({ ...command, host: isIP(address) === 6 ? `[${address}]` : address })
}

/** The real HAProxy behind the apply core's port: `haproxy -c`, the master, its Runtime API, the files. */
export class LiveHaproxy implements HaproxyPort {
  readonly master: HaproxyMaster
  readonly client: HaproxyClient
  private readonly artefacts: ArtefactWriter

  constructor(
    private readonly settings: Settings,
    log: Logger,
  ) {
    this.artefacts = new ArtefactWriter(settings)
    this.master = new HaproxyMaster({
      bin: settings.HAPROXY_BIN,
      configPath: this.artefacts.configPath,
      statsSocket: statsSocketPath(settings.CONFIG_DIR),
      serverStateFile: serverStatePath(settings.CONFIG_DIR),
      runDir: settings.CONFIG_DIR,
      reloadTimeoutMs: settings.RELOAD_TIMEOUT * 1000,
      terminateOnReload: settings.TERMINATE_ON_RELOAD,
      log: log.child({ component: 'haproxy' }),
    })
    this.client = new HaproxyClient(this.master.statsSocket, () => this.master.pid)
  }

  async validate(state: ServiceState): Promise<Verdict> {
    const dir = this.settings.CONFIG_DIR
    await mkdir(dir, { recursive: true })
    await this.artefacts.writeCertificates(state, { prune: false })
    return validateConfig(this.settings.HAPROXY_BIN, dir, (mapPaths) => {
      const rendered = renderAll(state, this.settings, { validation: { mapPaths } })
      return { config: rendered.config, mapFiles: routeMapFiles(dir, rendered.maps, mapPaths) }
    })
  }

  writeArtefacts(state: ServiceState, options: { prune: boolean }): Promise<void> {
    return this.artefacts.writeCertificates(state, options)
  }

  /** The configuration last written: served once the Runtime API commands that follow succeed. */
  private written?: string

  async writeConfig(rendered: Rendered, { served = false }: { served?: boolean } = {}): Promise<void> {
    await this.artefacts.writeConfig(rendered)
    this.written = rendered.config
    if (served) this.master.noteServed(rendered.config)
  }

  async start(version: string): Promise<LoadVerdict> {
    // A start after a failed one (the daemon's start-up fallback) is allowed again.
    this.master.resume()
    return this.master.start(version)
  }

  async reload(version: string): Promise<LoadVerdict> {
    return this.master.reload(version)
  }

  stop(hard: boolean): Promise<void> {
    return this.master.stop(hard)
  }

  workerPid(): Promise<number | undefined> {
    return this.client.info(1000).then(
      (info) => info.pid,
      () => undefined,
    )
  }

  noteServed(rendered: () => Rendered): void {
    this.master.noteServed(async () => {
      const served = rendered()
      await this.artefacts.writeConfig(served)
      this.written = served.config
      return served.config
    })
  }

  async runtimeCommands(commands: readonly RuntimeCommand[]): Promise<void> {
    await sendCommands(this.client.statsSocket, await Promise.all(commands.map((command) => withResolvedHost(command, this.settings.DNS_SERVERS, this.settings.HOSTS_FILE_NAMES))))
    // The worker now serves the file just written without a reload: a restart after a crash
    // must load that one (src/haproxy/master.ts).
    if (this.written !== undefined) this.master.noteServed(this.written)
  }

  portsInUse(ports: readonly number[]): Promise<number[]> {
    return portsInUse(ports)
  }

  async swapCertificate(loadPath: string, pem: string): Promise<void> {
    try {
      const set = await this.client.send(`set ssl cert ${loadPath} <<\n${pem.trimEnd()}\n`)
      if (!/Transaction (created|updated)/.test(set)) throw new Error(set.trim())
      const commit = await this.client.send(`commit ssl cert ${loadPath}`, 10_000)
      if (!/Success!/.test(commit)) throw new Error(commit.trim())
    } catch (err) {
      await this.client.send(`abort ssl cert ${loadPath}`).catch(() => undefined)
      throw err
    }
  }
}
