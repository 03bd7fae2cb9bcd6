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
 * The renderings of the last two states asked for: the live one and a candidate. Validation,
 * the runtime plan and the reload of a batch render the same candidate (each bisection step
 * builds it anew with `with`), and the live text is compared with it; at 10 000 services a
 * rendering is tens of ms and a few MB of strings to collect again.
 */
export class RenderCache {
  private recent: Array<{ state: ServiceState; rendered: Rendered }> = []

  constructor(private readonly settings: RenderSettings) {}

  render(state: ServiceState): Rendered {
    const hit = this.recent.find((entry) => sameState(entry.state, state))
    if (hit) {
      this.recent = [hit, ...this.recent.filter((entry) => entry !== hit)]
      return hit.rendered
    }
    const rendered = renderAll(state, this.settings)
    this.recent = [{ state, rendered }, ...this.recent.slice(0, 1)]
    return rendered
  }
}
