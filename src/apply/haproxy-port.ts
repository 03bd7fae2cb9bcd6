import { lookup, Resolver } from 'node:dns/promises'
import { mkdir } from 'node:fs/promises'
import { isIP } from 'node:net'
import type { Logger } from 'pino'
import { HaproxyClient } from '../haproxy/client.js'
import { HaproxyMaster } from '../haproxy/master.js'
import { portsInUse } from '../haproxy/port-probe.js'
import { type RuntimeCommand, sendCommands } from '../haproxy/commands.js'
import { validateConfig } from '../haproxy/validate.js'
import { type Rendered, renderAll, serverStatePath, statsSocketPath } from '../render/index.js'
import { routeMapFiles } from '../render/maps.js'
import { SpareTexts } from '../render/spares.js'
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
async function withResolvedHost(command: RuntimeCommand, dnsServers: readonly string[], hostsFileNames: ReadonlySet<string>): Promise<RuntimeCommand> {
  if (command.kind !== 'add server' || isIP(command.host.replace(/^\[|\]$/g, '')) !== 0) return command
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
  return { ...command, host: isIP(address) === 6 ? `[${address}]` : address }
}

/** The real HAProxy behind the apply core's port: `haproxy -c`, the master, its Runtime API, the files. */
export class LiveHaproxy implements HaproxyPort {
  readonly master: HaproxyMaster
  readonly client: HaproxyClient
  private readonly artefacts: ArtefactWriter
  private readonly spareTexts = new SpareTexts()
  /** `haproxy -c` runs so far: each candidate's file name. */
  private checks = 0

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
      const rendered = renderAll(state, this.settings, { validation: { mapPaths }, spareTexts: this.spareTexts })
      return { config: rendered.config, mapFiles: routeMapFiles(dir, rendered.maps, mapPaths) }
    }, ++this.checks)
  }

  writeArtefacts(state: ServiceState, options: { prune: boolean }): Promise<void> {
    return this.artefacts.writeCertificates(state, options)
  }

  writeConfig(rendered: Rendered): Promise<void> {
    return this.artefacts.writeConfig(rendered)
  }

  async start(version: string): Promise<LoadVerdict> {
    // A start after a failed one (the daemon's start-up fallback) is allowed again.
    this.master.resume()
    return this.master.start(version)
  }

  restart(version: string, oldPid: number | undefined): Promise<LoadVerdict> {
    return this.master.start(version, oldPid)
  }

  onExit(listener: () => void): void {
    this.master.onExit(listener)
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

  async runtimeCommands(commands: readonly RuntimeCommand[]): Promise<void> {
    await sendCommands(this.client.statsSocket, await Promise.all(commands.map((command) => withResolvedHost(command, this.settings.DNS_SERVERS, this.settings.HOSTS_FILE_NAMES))))
  }

  portsInUse(ports: readonly number[]): Promise<number[]> {
    return portsInUse(ports)
  }

  async swapCertificate(path: string, pem: string): Promise<void> {
    const socket = this.client.statsSocket
    try {
      await sendCommands(socket, [{ kind: 'set ssl cert', path, pem }])
      await sendCommands(socket, [{ kind: 'commit ssl cert', path }])
    } catch (err) {
      await sendCommands(socket, [{ kind: 'abort ssl cert', path }]).catch(() => undefined)
      throw err
    }
  }
}
