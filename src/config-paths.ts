import { join } from 'node:path'

/** Folder of the certificate copies HAProxy loads (`<source>/<name>`), written by the apply loop and listed by `/certs`. */
export const certDir = (configDir: string) => join(configDir, 'certs')

/** The map HAProxy answers ACME HTTP-01 challenges from (`<token> <key authorization>`), written by src/acme/challenge-map.ts. */
export const challengeMapPath = (configDir: string) => join(configDir, 'acme.map')
