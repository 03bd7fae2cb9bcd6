import type { Rendered, RenderSettings } from '../render/index.js'
import type { RouteMapName } from '../render/maps.js'
import { type Change, changedService, type ServiceState } from '../state/registry.js'
import { planRuntimeDelta, type RuntimeDelta } from './runtime-plan.js'
import { planServiceDelta } from './service-delta.js'
import type { Worker } from './served.js'

/**
 * How a batch's changes become live, decided once per batch (and carried out by
 * src/apply/core.ts): `unchanged` (nothing to do), `runtime` (Runtime API commands to the
 * worker, no reload), or `reload` (validate, bisect what HAProxy refuses, reload). A runtime plan
 * that fails when carried out falls back to the reload, never to another plan.
 */
export type Plan =
  | { kind: 'unchanged' }
  | (RuntimeDelta & {
      kind: 'runtime'
      state: ServiceState
      /** The worker planned for. */
      pid: number
      /**
       * The whole rendering the commands were planned from: its files are written before the
       * commands are sent, and its certificates swapped. Undefined for a plan from the changed
       * services alone, whose files are written once changes pause.
       */
      rendered?: Rendered
      /** `haproxy -c` first: the batch changes certificates, which are swapped only once checked. */
      check: boolean
    })
  | { kind: 'reload'; state: ServiceState }

export interface PlanInput {
  /** The running worker, undefined when nobody knows what it serves. */
  worker: Worker | undefined
  before: ServiceState
  changes: readonly Change[]
  /** `before.with(changes)`, made once per batch (the state log saved it already). */
  after: ServiceState
  settings: RenderSettings
  /** How many services of `before` claim a map key (src/apply/state-index.ts). */
  claims: (map: RouteMapName, key: string) => number
  render: (state: ServiceState) => Rendered
}

/**
 * The one decision per batch. A batch of puts and removes is first planned from its services
 * alone (src/apply/service-delta.ts: nothing rendered); when that cannot tell, or the batch
 * changes certificates, from the whole rendering (src/apply/runtime-plan.ts). Neither: a reload.
 */
export function planChange({ worker, before, changes, after, settings, claims, render }: PlanInput): Plan {
  if (after === before) return { kind: 'unchanged' }
  if (!worker) return { kind: 'reload', state: after }
  const servicesOnly = changes.every((change) => change.kind === 'put' || change.kind === 'remove')
  if (servicesOnly) {
    const names = new Set(changes.map(changedService))
    const delta = planServiceDelta(worker.view, before, after, names, settings, claims)
    if (delta) return { ...delta, kind: 'runtime', state: after, pid: worker.pid, check: false }
  }
  const rendered = render(after)
  const delta = planRuntimeDelta(worker.view, rendered, settings.CONFIG_DIR)
  if (!delta) return { kind: 'reload', state: after }
  return { ...delta, kind: 'runtime', state: after, pid: worker.pid, rendered, check: !servicesOnly }
}
