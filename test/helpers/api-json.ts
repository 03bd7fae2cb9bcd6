import type { AcmeRow, CertificateRow } from '../../src/routes/certs.js'
import type { ReplicaRow } from '../../src/routes/distributed.js'
import type { StatusReport } from '../../src/status/report.js'

/**
 * The JSON answers of the control API, as the tests read them, typed from the routes that make
 * them: `call()` answers `ApiAnswer` unless the test names another (`call<StatusAnswer>('status', …)`).
 */

/** DFP's answer (src/routes/responses.ts): Status and Message, and the lists some endpoints add. */
export interface ApiAnswer {
  Status: 'OK' | 'NOK'
  Message: string
  ServiceName?: string
  /** The service's destinations, with their Go field names (reconfigure). */
  ServiceDest?: Array<Record<string, unknown>>
  /** /certs, /cert. */
  Certs?: CertificateRow[]
  /** /certs. */
  Acme?: AcmeRow[]
  /** Answers of a change with `distribute=true`. */
  Replicas?: ReplicaRow[]
}

/** `/status?type=json`. */
export type StatusAnswer = StatusReport

/** `/config?type=json`. */
export type { ConfigAnswer } from '../../src/routes/proxy.js'

/** The time an answer's ISO date field gives, in ms; NaN when the field is null or absent (so arithmetic on it fails the check). */
export const timeOf = (iso: string | null | undefined): number => (iso ? Date.parse(iso) : Number.NaN)
