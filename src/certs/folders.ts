import { messageOf } from '../errors.js'
import { readdir, readFile, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { watch, type FSWatcher } from 'chokidar'
import type { Logger } from 'pino'
import type { ApplyCore } from '../apply/core.js'
import type { Settings } from '../settings.js'
import type { LiveState } from '../state/live.js'
import type { CertificateFile } from '../state/registry.js'
import { inspectCertificate } from '../pem.js'

/** Secrets that are certificates (inventory §4): names starting with `cert-` or `cert_`. */
const isCertSecret = (name: string) => /^cert[-_]/i.test(name)

/** Names of the files in `dir` (symbolic links followed, as Let's Encrypt and Kubernetes use them). */
async function regularFiles(dir: string, accept: (name: string) => boolean): Promise<string[]> {
  let names: string[]
  try {
    names = await readdir(dir)
  } catch {
    return [] // a missing folder holds no certificates
  }
  const files: string[] = []
  for (const name of names.sort()) {
    if (name.startsWith('.') || !accept(name)) continue
    if (await stat(join(dir, name)).then((s) => s.isFile(), () => false)) files.push(name)
  }
  return files
}

/**
 * Reads the certificates of CERTS_DIR (every file) and SECRETS_DIR (`cert-*`, `cert_*`), in
 * name order. A file that is not a usable PEM bundle is logged and left out; if it was used
 * before (`previous`), its last good content is kept (HAProxy loads dfp's copy, not the file),
 * so a half-written or broken file takes no domain's certificate away.
 */
export async function scanCertificateFolders(settings: Settings, log: Logger, previous: readonly CertificateFile[] = []): Promise<CertificateFile[]> {
  const sources = [
    { dir: settings.CERTS_DIR, source: 'folder' as const, accept: () => true },
    { dir: settings.SECRETS_DIR, source: 'secret' as const, accept: isCertSecret },
  ]
  const files: CertificateFile[] = []
  for (const { dir, source, accept } of sources) {
    for (const name of await regularFiles(dir, accept)) {
      const path = join(dir, name)
      const pem = await readFile(path, 'utf8').catch(() => '')
      try {
        const info = inspectCertificate(pem)
        if (info.expired) log.warn({ certificate: path, validTo: info.validTo }, 'certificate has expired')
        files.push({ name, path, source, pem })
      } catch (err) {
        const kept = previous.find((f) => f.path === path)
        log.error({ certificate: path, error: messageOf(err), keptPrevious: Boolean(kept) }, 'certificate file refused')
        if (kept) files.push(kept)
      }
    }
  }
  return files
}

/**
 * Watches both folders and feeds what they hold into the apply loop: a new or removed file
 * reloads (validated), a changed one is swapped through the Runtime API.
 */
export class CertificateWatcher {
  private watcher?: FSWatcher
  private timer?: NodeJS.Timeout
  private scanning = Promise.resolve()

  constructor(
    private readonly settings: Settings,
    /** Where each rescan is applied. */
    private readonly applier: Pick<ApplyCore, 'apply'>,
    /** What HAProxy serves now: the previous scan, whose good content a bad file keeps. */
    private readonly live: LiveState,
    private readonly log: Logger,
  ) {}

  start(): void {
    const dirs = [this.settings.CERTS_DIR, this.settings.SECRETS_DIR]
    this.watcher = watch(dirs, { ignoreInitial: true, depth: 0, awaitWriteFinish: { stabilityThreshold: 200, pollInterval: 50 } })
    this.watcher.on('all', () => this.schedule())
    this.watcher.on('error', (err) => this.log.warn({ err }, 'watching the certificate folders failed'))
  }

  async stop(): Promise<void> {
    clearTimeout(this.timer)
    await this.watcher?.close()
    await this.scanning
  }

  /** Several events of one change (write, rename) become one scan. */
  private schedule(): void {
    clearTimeout(this.timer)
    this.timer = setTimeout(() => {
      this.scanning = this.scanning.then(() => this.rescan())
    }, 100)
  }

  private async rescan(): Promise<void> {
    const files = await scanCertificateFolders(this.settings, this.log, this.live.services.scanned)
    try {
      await this.applier.apply([{ kind: 'cert-scan', files }])
      this.log.info({ certificates: files.map((f) => f.name) }, 'certificate folders applied')
    } catch (err) {
      this.log.error({ error: messageOf(err) }, 'certificate folders refused; the previous certificates stay')
    }
  }
}
