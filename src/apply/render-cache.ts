import { type Rendered, renderAll, type RenderSettings } from '../render/index.js'
import { SpareTexts } from '../render/spares.js'
import type { ServiceState } from '../state/registry.js'

/** Whether two states hold the very same entries and certificates — uploaded, scanned and ACME (`with` keeps unchanged ones). */
export function sameState(a: ServiceState, b: ServiceState): boolean {
  if (a === b) return true
  if (a.entryMap.size !== b.entryMap.size || a.uploaded !== b.uploaded || a.scanned !== b.scanned || a.acme !== b.acme) return false
  for (const [name, entry] of a.entryMap) if (b.entryMap.get(name) !== entry) return false
  return true
}

/**
 * The renderings of the last two states asked for: a batch's candidate and the live state it
 * is checked and reloaded against (validation, the runtime plan and the reload render the same
 * candidate; each bisection step builds it anew with `with`). At 10 000 services a rendering is
 * tens of ms and a few MB of strings to collect again.
 */
export class RenderCache {
  /** Most recent first; at most two. */
  private kept: Array<{ state: ServiceState; rendered: Rendered }> = []
  /** Whole renderings made (not taken from the cache) since start. */
  renders = 0
  private readonly spareTexts = new SpareTexts()

  constructor(private readonly settings: RenderSettings) {}

  render(state: ServiceState): Rendered {
    const hit = this.kept.find((entry) => sameState(entry.state, state))
    if (hit) {
      this.kept = [hit, ...this.kept.filter((entry) => entry !== hit)]
      return hit.rendered
    }
    const rendered = renderAll(state, this.settings, { spareTexts: this.spareTexts })
    this.renders++
    this.kept = [{ state, rendered }, ...this.kept.slice(0, 1)]
    return rendered
  }
}
