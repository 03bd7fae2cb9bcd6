import type { Logger } from 'pino'
import { redactConfig } from '../haproxy/redact.js'
import type { Metrics } from '../metrics/index.js'
import type { Rendered, RenderSettings } from '../render/index.js'
import type { LiveState } from '../state/live.js'
import type { ServiceState } from '../state/registry.js'
import type { CheckResult } from './batch.js'
import { newPortsInUse } from './port-check.js'
import type { HaproxyPort } from './port.js'

/**
 * Whether HAProxy would load a candidate state: its new ports free, then `haproxy -c`. A refused
 * candidate is counted, and logged whole with DISPLAY_CONFIG_ON_ERROR.
 */
export class CandidateCheck {
  private livePortsCache?: { state: ServiceState; ports: Set<number> }

  constructor(
    private readonly options: {
      settings: RenderSettings & { DISPLAY_CONFIG_ON_ERROR: boolean }
      port: HaproxyPort
      metrics: Metrics
      log: Logger
      live: LiveState
      render: (state: ServiceState) => Rendered
    },
  ) {}

  /** `force`: checked even when its configuration is the live one (the catch-up after runtime changes). */
  async check(state: ServiceState, { force = false } = {}): Promise<CheckResult> {
    const { port, settings, metrics, log, live, render } = this.options
    const rendered = render(state)
    // Map entries are plain words by construction (src/render/maps.ts), so new entries alone
    // cannot make a configuration HAProxy refuses.
    if (rendered.config === live.config && !force) return { ok: true }
    const taken = await newPortsInUse(port, rendered, this.livePorts())
    if (taken) return { ok: false, kind: 'refused', error: taken }
    const verdict = await port.validate(state)
    if (verdict.ok) return verdict
    if (verdict.kind === 'unavailable') {
      log.error({ error: verdict.error }, 'the configuration could not be checked')
      return verdict
    }
    // DISPLAY_CONFIG_ON_ERROR: the refused candidate goes to the log, whole, for debugging.
    if (settings.DISPLAY_CONFIG_ON_ERROR) log.warn({ error: verdict.error, config: redactConfig(rendered.config) }, 'configuration refused by haproxy')
    metrics.validationFailures.inc()
    return verdict
  }

  /** The ports the live configuration binds (HAProxy holds them, so they are not probed). */
  private livePorts(): Set<number> {
    const state = this.options.live.services
    if (this.livePortsCache?.state !== state) {
      this.livePortsCache = { state, ports: new Set(this.options.render(state).ports.keys()) }
    }
    return this.livePortsCache.ports
  }
}
