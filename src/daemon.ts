import type { Logger } from 'pino'
import { buildApp } from './app.js'
import { ConfigApplier } from './haproxy/apply.js'
import { createMetrics } from './metrics/index.js'
import { parseChange } from './service/params.js'
import type { Settings } from './settings.js'
import { StateStore } from './state/store.js'
import { Distributor } from './swarm/distribute.js'
import { ListenerSync } from './swarm/listener.js'

/**
 * Everything the daemon is, wired together, without listening: main.ts listens and handles
 * signals; tests start the same thing on free ports.
 */
export function createDaemon(settings: Settings, logger: Logger) {
  const metrics = createMetrics()
  const store = new StateStore(settings.CONFIG_DIR, logger)
  const applier = new ConfigApplier(settings, logger, metrics, store)
  const listener = new ListenerSync(settings, applier, logger.child({ component: 'listener' }))
  const distributor = new Distributor(settings, logger.child({ component: 'distribute' }))
  const app = buildApp({ settings, applier, metrics, logger, listener, distributor })
  return {
    app,
    applier,
    store,
    metrics,
    listener,
    /**
     * Loads the saved state and starts HAProxy on it, so a restarted replica serves its routes
     * first; then starts pulling from the listener in the background.
     */
    async start(): Promise<void> {
      await applier.start(await store.load((params) => parseChange(params, { separator: settings.SEPARATOR })))
      listener.start()
    },
    /** Stops the API, finishes the running batch and stops HAProxy (`hard`: at once). */
    async close({ hard = false } = {}): Promise<void> {
      await listener.stop()
      await app.close()
      await applier.close({ hard })
    },
  }
}

export type Daemon = ReturnType<typeof createDaemon>
