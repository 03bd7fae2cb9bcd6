import { join } from 'node:path'

/** Folder of the certificate copies HAProxy loads (`<source>/<name>`), written by the apply loop and listed by `/certs`. */
export const certDir = (configDir: string) => join(configDir, 'certs')
