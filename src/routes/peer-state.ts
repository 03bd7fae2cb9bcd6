import type { FastifyInstance } from 'fastify'
import type { LiveState } from '../state/live.js'
import { PEER_STATE_PATH, peerStateOf } from '../swarm/peer-sync.js'

export interface PeerStateRoutesOptions {
  live: LiveState
}

/**
 * `GET /v1/docker-flow-proxy/peer-state`: what a starting replica takes from this one
 * (src/swarm/peer-sync.ts), private keys included. Like every other endpoint it is behind
 * API_USERS when that is set, where a replica proves itself with the replicas' token (the hook in
 * app.ts). A starting replica cannot be told apart by its address: Docker lists a task with a
 * health check in `tasks.<SERVICE_NAME>`, and gives it a DNS name, only once it is healthy
 * (docs/swarm.md, "Trust").
 */
export async function peerStateRoutes(app: FastifyInstance, { live }: PeerStateRoutesOptions): Promise<void> {
  app.get(PEER_STATE_PATH, async () => peerStateOf(live.services))
}
