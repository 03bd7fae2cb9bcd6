import type { z } from 'zod'
import type { destinationSchema } from './destination-schema.js'
import type { ServiceSchema } from './service-schema.js'

export type { User } from '../auth/credentials.js'

/**
 * One route of a service (inventory §3.4), as its parameters declare it (destination-schema.ts).
 * `index` is N of `param.N`, 0 when not indexed.
 */
export type Destination = z.output<ReturnType<typeof destinationSchema>>

/** A service as the proxy stores it: its parameters as service-schema.ts declares them, 1..10 destinations, and its rendered custom templates. */
export type Service = z.output<ServiceSchema> & {
  /** Rendered `templateFePath`: replaces the service's generated rules in `frontend services`. */
  customFrontend?: string
  /** Rendered `templateBePath`: replaces the service's generated backends. */
  customBackend?: string
}

/** Where a service definition came from: the HTTP API, a listener pull, or the environment. */
export type ServiceSource = 'api' | 'listener' | 'env'

/** A change to one service: what a reconfigure or remove request parses into. */
export type ServiceChange =
  | { kind: 'put'; service: Service; source?: ServiceSource; params?: Record<string, string> }
  | { kind: 'remove'; serviceName: string }
