import { mkdir } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import { certDir } from './config-paths.js'
import { crtListPath } from './render/index.js'
import type { Settings } from './settings.js'

/** The sources a certificate copy comes from: one folder each below `CONFIG_DIR/certs`. */
const CERT_SOURCES = ['folder', 'secret', 'uploaded', 'acme'] as const

/**
 * The folders the daemon writes, in the order they must exist: CONFIG_DIR (state log and
 * snapshot, ACME account keys, haproxy.cfg with passwords, the master socket and pid file, the
 * stats socket, the server-state file, the ACME challenge map), its `certs/<source>` copies and
 * `maps`, and the folder of CRT_LIST_PATH. All hold secrets or what HAProxy trusts, so a folder
 * created here is readable by its owner only (0700). Folders dfp only reads (CERTS_DIR,
 * SECRETS_DIR, TEMPLATES_DIR) are not created: a missing one is an empty one.
 */
export function writtenFolders(settings: Pick<Settings, 'CONFIG_DIR' | 'CRT_LIST_PATH'>): string[] {
  const certs = certDir(settings.CONFIG_DIR)
  return [settings.CONFIG_DIR, certs, ...CERT_SOURCES.map((source) => join(certs, source)), join(settings.CONFIG_DIR, 'maps'), dirname(crtListPath(settings))]
}

/**
 * Creates every folder the daemon writes (a fresh machine has none of them); an existing folder
 * keeps its mode. Returns the folders it created.
 */
export async function createFolders(settings: Pick<Settings, 'CONFIG_DIR' | 'CRT_LIST_PATH'>): Promise<string[]> {
  const created: string[] = []
  for (const dir of writtenFolders(settings)) {
    const first = await mkdir(dir, { recursive: true, mode: 0o700 })
    if (first !== undefined) created.push(dir)
  }
  return created
}
