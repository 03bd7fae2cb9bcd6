import type { Rendered } from '../render/index.js'
import type { HaproxyPort } from './port.js'

/**
 * Why the candidate cannot be loaded because of its ports, or undefined. A port the live
 * configuration does not bind yet and another process holds would make the reload fail, and
 * every frontend would stop accepting while HAProxy retries binding it (the old worker's
 * listeners are paused): such a change is refused before any reload. Ports the live
 * configuration binds are HAProxy's own and not probed.
 */
export async function newPortsInUse(port: HaproxyPort, candidate: Rendered, livePorts: ReadonlySet<number>): Promise<string | undefined> {
  const taken = await port.portsInUse([...candidate.ports.keys()].filter((p) => !livePorts.has(p)))
  if (taken.length === 0) return undefined
  return `port ${taken.map((p) => `${p} (${candidate.ports.get(p)})`).join(', ')} is in use by another process`
}
