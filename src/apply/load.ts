import type { Logger } from 'pino'
import type { Metrics } from '../metrics/index.js'
import type { Rendered } from '../render/index.js'
import type { ServiceState } from '../state/registry.js'
import type { CheckResult } from './batch.js'
import type { HaproxyPort } from './port.js'
import type { ServedHaproxy } from './served.js'

export interface LoadOptions {
  port: HaproxyPort
  served: ServedHaproxy
  metrics: Metrics
  log: Logger
  render: (state: ServiceState) => Rendered
}

/**
 * Reloads HAProxy on the configuration of `state` (its files written first), alone among the
 * record's writers. If HAProxy cannot load it (a port in use, say, or the master died), the
 * record's files are put back and loaded again: `refused` when that worked, `systemic` when
 * HAProxy could not be put back, `unavailable` when the machinery failed (a master that died is
 * started again by the record, src/apply/served.ts). Resolves with the reload's outcome and,
 * when it worked, the new worker's pid.
 */
export function reloadOnto(options: LoadOptions, state: ServiceState): Promise<CheckResult & { pid?: number }> {
  return options.served.exclusive(() => reloadAlone(options, state))
}

async function reloadAlone({ port, served, metrics, log, render }: LoadOptions, state: ServiceState): Promise<CheckResult & { pid?: number }> {
  const rendered = render(state)
  await port.writeArtefacts(state, { prune: false })
  const timer = metrics.reloadDuration.startTimer()
  await served.writeFiles(rendered)
  const loaded = await port.reload(rendered.version)
  const ms = Math.round(timer() * 1000)
  metrics.recordReload(loaded.ok ? { ok: true, ms } : { ok: false, ms, error: loaded.error })
  if (loaded.ok) {
    served.loaded(state, rendered, loaded.pid)
    metrics.reloads.inc()
    log.info({ outcome: 'ok', ms, workerPid: loaded.pid, services: state.size }, 'haproxy reloaded')
    return { ok: true, pid: loaded.pid }
  }
  metrics.reloadFailures.inc()
  log.error({ outcome: 'failed', ms, error: loaded.error, kind: loaded.kind }, 'haproxy could not load the new configuration; restoring the previous one')
  const live = served.services
  await port.writeArtefacts(live, { prune: false })
  // Rendering is deterministic: the live state renders to the files HAProxy served before.
  const restoring = render(live)
  await served.writeFiles(restoring)
  const restored = await port.reload(restoring.version)
  if (!restored.ok) log.error({ error: restored.error }, 'haproxy could not reload the previous configuration either')
  // The worker now runs the previous files (or, if that failed too, nobody knows what).
  if (restored.ok) served.loaded(live, restoring, restored.pid)
  else served.unknown()
  if (loaded.kind === 'unavailable') return { ok: false, kind: 'unavailable', error: loaded.error }
  return { ok: false, kind: !restored.ok || rendered.config === restoring.config ? 'systemic' : 'refused', error: loaded.error }
}
