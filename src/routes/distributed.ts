import type { FastifyRequest } from 'fastify'
import { errors } from '../errors.js'
import { isTrue } from '../field-values.js'
import type { ApplyCore } from '../apply/core.js'
import type { Change } from '../state/registry.js'
import type { Distributor, FanOutResult, ReplicaOutcome, ReplicaRequest } from '../swarm/distribute.js'
import type { DfpResponse } from './responses.js'

/** A change request of the API: what to apply, what the other replicas are sent, and the answer. */
export interface ChangeRequest {
  request: FastifyRequest
  changes: Change[]
  /** Sent to the other replicas when its parameters say `distribute=true`. */
  forReplicas: ReplicaRequest
  /** The answer once the changes are live (here, and with distribute on every replica). */
  done: DfpResponse
}

/**
 * Applies a change request here and, with `distribute=true`, on every other replica too. The
 * answer lists each replica's outcome; it is 500 when one failed, so the listener sends it again.
 */
export type ApplyChanges = (change: ChangeRequest) => Promise<DfpResponse>

export function applyChangesWith(
  applier: Pick<ApplyCore, 'apply'>,
  distributor: Distributor,
  { max = Number.POSITIVE_INFINITY, gauge }: { max?: number; gauge?: { set(value: number): void } } = {},
): ApplyChanges {
  // Requests waiting for their changes: bounded, so a flood of clients cannot grow the daemon.
  let pending = 0
  return async ({ request, changes, forReplicas, done }) => {
    if (pending >= max) throw errors.tooManyPending(max, done.ServiceName)
    gauge?.set(++pending)
    try {
      if (!isTrue(forReplicas.params.distribute)) {
        await applier.apply(changes)
        return done
      }
      return distributedAnswer(await distributor.fanOut(forReplicas, request.headers.authorization, () => applier.apply(changes)), done)
    } finally {
      gauge?.set(--pending)
    }
  }
}

function distributedAnswer(result: FanOutResult<unknown>, done: DfpResponse): DfpResponse {
  switch (result.kind) {
    case 'lookup-failed':
      throw errors.replicaLookupFailed(result.message, done.ServiceName)
    case 'replicas-failed':
      throw errors.replicasFailed(result.failed, result.replicas.map(replicaFields), done.ServiceName)
    case 'done': {
      const distributed = 'Distributed to all instances'
      return { ...done, Message: done.Message ? `${done.Message}; ${distributed}` : distributed, Replicas: result.replicas.map(replicaFields) }
    }
  }
}

const replicaFields = (r: ReplicaOutcome) => ({ Address: r.address, Status: r.status ?? 0, Message: r.message, Attempts: r.attempts })
/** A replica's outcome in the `Replicas` of a distributed answer. */
export type ReplicaRow = ReturnType<typeof replicaFields>
