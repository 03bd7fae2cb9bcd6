import type { Logger } from 'pino'
import { createAcme } from './acme/index.js'
import { registerAcmeMetrics } from './acme/metrics.js'
import { buildApp } from './app.js'
import { CertificateWatcher, scanCertificateFolders } from './certs/folders.js'
import { ApplyCore } from './apply/core.js'
import { removeLeftovers } from './files.js'
import { createFolders } from './folders.js'
import { LiveHaproxy } from './apply/haproxy-port.js'
import { SyslogRelay } from './haproxy/syslog.js'
import { createMetrics } from './metrics/index.js'
import { envChanges } from './env-services.js'
import { parseChange } from './service/params.js'
import type { Settings } from './settings.js'
import { LiveState } from './state/live.js'
import { StateStore } from './state/store.js'
import { parserFingerprint } from './service/fingerprint.js'
import { Distributor } from './swarm/distribute.js'
import { ListenerSync } from './swarm/listener.js'
import { PeerSync } from './swarm/peer-sync.js'

/**
 * Everything the daemon is, wired together, without listening: main.ts listens and handles
 * signals; tests start the same thing on free ports.
 */
export function createDaemon(settings: Settings, logger: Logger) {
  // The environment's services, parsed here: a bad one throws a SettingsError before anything runs.
  const fromEnvironment = envChanges(settings)
  const metrics = createMetrics()
  const store = new StateStore(settings.CONFIG_DIR, logger, parserFingerprint(settings.PARSE_OPTIONS))
  const live = new LiveState()
  const haproxy = new LiveHaproxy(settings, logger)
  const applier = new ApplyCore({ settings, port: haproxy, store, log: logger, metrics, live })
  const listener = new ListenerSync(settings, applier, live, logger.child({ component: 'listener' }))
  const distributor = new Distributor(settings, logger.child({ component: 'distribute' }))
  const peerSync = new PeerSync({ settings, applier, live, distributor, log: logger.child({ component: 'peers' }), listener })
  const certLog = logger.child({ component: 'certs' })
  const certWatcher = new CertificateWatcher(settings, applier, live, certLog)
  const acme = createAcme(settings, logger, { apply: (changes) => applier.apply(changes), directory: distributor, haproxy: haproxy.client })
  live.onServicesChange((services) => acme.stateLive(services))
  registerAcmeMetrics(metrics.registry, acme.manager)
  const relay = settings.DEBUG ? new SyslogRelay(settings.DEBUG_LOG_ADDRESS, logger.child({ component: 'haproxy' })) : undefined
  metrics.bind({ state: () => live.services, reloads: () => applier.reloads, listenerLastSync: () => listener.lastSync, unserved: () => live.unserved.size })
  const app = buildApp({ settings, applier, live, haproxy: haproxy.client, metrics, logger, listener, distributor, peerSync, acme })
  return {
    app,
    applier,
    live,
    /** The running HAProxy's Runtime API and master pid. */
    haproxy: haproxy.client,
    /** The apply core's port to the real HAProxy (the benchmark times its checks and reloads). */
    port: haproxy,
    store,
    metrics,
    listener,
    peerSync,
    acme,
    /**
     * Loads the saved state and the certificate folders and starts HAProxy on them, so a
     * restarted replica serves its routes first; then watches the folders, takes the API
     * services and uploaded certificates of a peer replica and pulls from the listener, in the
     * background (successfulinitreload waits for both).
     */
    async start(): Promise<void> {
      // DEBUG: listen before HAProxy starts sending.
      await relay?.start()
      // A fresh machine has none of the folders the daemon writes (src/folders.ts).
      const created = await createFolders(settings)
      if (created.length) logger.info({ folders: created }, 'created the folders the daemon writes (mode 0700)')
      // Candidates and temporary files a killed daemon or a full disk left behind.
      const removed = await removeLeftovers(settings.CONFIG_DIR)
      if (removed.length) logger.info({ files: removed.length }, 'removed temporary files left by a previous run')
      const saved = await store.load((params) => parseChange(params, settings.PARSE_OPTIONS))
      const folders = await scanCertificateFolders(settings, certLog)
      const issued = await acme.load()
      // DFP_SERVICE_* services (checked when the settings were read) replace their saved copies;
      // saved env services the environment no longer defines are dropped.
      const fromEnv = fromEnvironment.map((change) => ({ ...change, source: 'env' as const }))
      const envNames = new Set(fromEnv.map((change) => (change.kind === 'put' ? change.service.serviceName : change.serviceName)))
      const kept = saved.filter((change) => !(change.kind === 'put' && change.source === 'env' && !envNames.has(change.service.serviceName)))
      if (fromEnv.length) logger.info({ services: [...envNames] }, 'services defined in the environment')
      if (settings.CFG_TEMPLATE_PATH) {
        logger.warn({ CFG_TEMPLATE_PATH: settings.CFG_TEMPLATE_PATH }, 'CFG_TEMPLATE_PATH is not used: the base of haproxy.cfg is dfp\'s own template; add lines with EXTRA_GLOBAL, EXTRA_FRONTEND or backendExtra (docs/config.md)')
      }
      await applier.start([{ kind: 'cert-scan', files: folders }, ...issued, ...kept, ...fromEnv])
      certWatcher.start()
      peerSync.start()
      listener.start()
    },
    /** Stops the API, finishes the running batch and stops HAProxy (`hard`: at once). */
    async close({ hard = false } = {}): Promise<void> {
      await listener.stop()
      await peerSync.stop()
      await certWatcher.stop()
      await app.close()
      await acme.close()
      await applier.close({ hard })
      await relay?.stop()
    },
  }
}

export type Daemon = ReturnType<typeof createDaemon>
