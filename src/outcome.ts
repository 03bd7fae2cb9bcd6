/**
 * The one outcome type of an attempt whose failure has a kind (what HAProxy said about a
 * configuration, a load, a batch's check): `{ ok: true }` with what the success carries, or
 * `{ ok: false, kind, error }`. `refused`: HAProxy read it and said no (a verdict on the change).
 * `unavailable`: the validator or the master died or timed out, which says nothing about the
 * change (503, never 400). `systemic`: HAProxy could not even be put back (500).
 */
export type Outcome<Success extends object = object, Kind extends FailureKind = 'refused' | 'unavailable'> = ({ ok: true } & Success) | Failure<Kind>

export type FailureKind = 'refused' | 'unavailable' | 'systemic'

export interface Failure<Kind extends FailureKind = FailureKind> {
  ok: false
  kind: Kind
  error: string
}
