/**
 * What a server's HAProxy status (`show stat`'s `status`) and weight mean for traffic, as the
 * status page and `/metrics` show it:
 * - `ready`: it takes new requests (`UP`, `UP 1/3` while checks fail, `no check`, `OPEN`) with a
 *   weight above 0;
 * - `draining`: it finishes what it has and takes no new requests but from sticky clients
 *   (`DRAIN`, `NOLB`, or up with weight 0 — a canary at 0, a colour being left);
 * - `down`: it takes nothing (`DOWN`, `DOWN 1/2` while checks recover, `MAINT`: a task slot
 *   without an address, or a server set to maintenance).
 */
export type ServerState = 'ready' | 'draining' | 'down'

export const SERVER_STATES: readonly ServerState[] = ['ready', 'draining', 'down']

export function serverState(status: string, weight: number | null): ServerState {
  if (/^(DRAIN|NOLB)/.test(status)) return 'draining'
  if (/^(UP|OPEN|no check)/.test(status)) return weight === 0 ? 'draining' : 'ready'
  return 'down'
}
