import type { FastifyInstance } from 'fastify'
import { errors } from '../errors.js'
import type { Settings } from '../settings.js'
import type { LiveState } from '../state/live.js'
import type { Distributor } from '../swarm/distribute.js'
import { PEER_STATE_PATH, peerStateOf } from '../swarm/peer-sync.js'

export interface PeerStateRoutesOptions {
  settings: Settings
  live: LiveState
  distributor: Distributor
}

/**
 * `GET /v1/docker-flow-proxy/peer-state`: what a starting replica takes from this one
 * (src/swarm/peer-sync.ts), private keys included. Answered only to another replica (an address
 * of `tasks.<SERVICE_NAME>`, or one whose DNS name is a task of SERVICE_NAME) and, with API_USERS, to a request carrying the
 * replicas' token or an API user's credentials (the hook in app.ts).
 */
export async function peerStateRoutes(app: FastifyInstance, { settings, live, distributor }: PeerStateRoutesOptions): Promise<void> {
  app.get(PEER_STATE_PATH, async (request) => {
    const from = request.socket.remoteAddress?.replace(/^::ffff:/, '') ?? ''
    if (!(await distributor.isReplica(from))) throw errors.notAReplica(from, settings.SERVICE_NAME)
    return peerStateOf(live.services)
  })
}
