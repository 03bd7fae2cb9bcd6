import { type Rendered, renderAll, type RenderSettings } from '../render/index.js'
import type { ServiceState } from '../state/registry.js'

/** Whether two states hold the very same entries and certificates — uploaded, scanned and ACME (`with` keeps unchanged ones). */
export function sameState(a: ServiceState, b: ServiceState): boolean {
  if (a === b) return true
  if (a.entryMap.size !== b.entryMap.size || a.uploaded !== b.uploaded || a.scanned !== b.scanned || a.acme !== b.acme) return false
  for (const [name, entry] of a.entryMap) if (b.entryMap.get(name) !== entry) return false
  return true
}

/**
 * The rendering of the last state asked for. Validation, the runtime plan and the reload of a
 * batch render the same state (each bisection step builds it anew with `with`); at 10 000
 * services a rendering is tens of ms and a few MB of strings to collect again.
 */
export class RenderCache {
  private last?: { state: ServiceState; rendered: Rendered }
  /** Whole renderings made (not taken from the cache) since start. */
  renders = 0

  constructor(private readonly settings: RenderSettings) {}

  render(state: ServiceState): Rendered {
    if (this.last && sameState(this.last.state, state)) return this.last.rendered
    const rendered = renderAll(state, this.settings)
    this.renders++
    this.last = { state, rendered }
    return rendered
  }
}
