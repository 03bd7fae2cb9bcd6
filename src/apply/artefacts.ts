import { mkdir, readdir, rm } from 'node:fs/promises'
import { join } from 'node:path'
import { writeAtomic } from '../files.js'
import { certDir } from '../config-paths.js'
import { crtListPath, type Rendered, renderCrtList, type RenderSettings } from '../render/index.js'
import { routeMapFiles } from '../render/maps.js'
import type { ServiceState } from '../state/registry.js'

/**
 * The files HAProxy reads: the configuration, the route maps, the crt-list and the copies of the
 * certificates. Each is written atomically and only when its content changed.
 */
export class ArtefactWriter {
  /** Content last written to each path. */
  private readonly written = new Map<string, string>()
  /**
   * The certificates of the last complete write with `prune`: a state with the very same ones
   * (a batch of services alone keeps them) has nothing to write or remove, so a batch does not
   * list four folders.
   */
  private pruned: Pick<ServiceState, 'uploaded' | 'scanned' | 'acme'> | undefined
  readonly configPath: string

  constructor(private readonly settings: RenderSettings) {
    this.configPath = join(settings.CONFIG_DIR, 'haproxy.cfg')
  }

  private async write(path: string, content: string, mode = 0o644): Promise<void> {
    if (this.written.get(path) === content) return
    await writeAtomic(path, content, mode)
    this.written.set(path, content)
  }

  /**
   * The copies of the certificates and the crt-list. The running HAProxy holds its certificates
   * in memory, so only a load reads them. `prune` (only for a state that is live) also removes
   * the copies that state no longer has: a candidate's removals must not reach the disk before
   * it is served.
   */
  async writeCertificates(state: ServiceState, { prune }: { prune: boolean }): Promise<void> {
    const last = this.pruned
    if (last && last.uploaded === state.uploaded && last.scanned === state.scanned && last.acme === state.acme) return
    // A write that fails half-way leaves nothing to trust.
    this.pruned = undefined
    const dir = certDir(this.settings.CONFIG_DIR)
    const files = state.certificateFiles(dir)
    const wanted = new Set(files.map((f) => f.loadPath))
    for (const source of ['folder', 'secret', 'uploaded', 'acme']) {
      const sub = join(dir, source)
      await mkdir(sub, { recursive: true, mode: 0o700 })
      if (!prune) continue
      for (const name of await readdir(sub)) {
        const path = join(sub, name)
        if (!wanted.has(path) && !name.includes('.tmp-')) {
          await rm(path, { force: true })
          this.written.delete(path)
        }
      }
    }
    for (const file of files) await this.write(file.loadPath, file.pem, 0o600)
    await this.write(crtListPath(this.settings), renderCrtList(state, this.settings))
    if (prune) this.pruned = { uploaded: state.uploaded, scanned: state.scanned, acme: state.acme }
  }

  /** The route maps, then the configuration that reads them. */
  async writeConfig(rendered: Rendered): Promise<void> {
    await mkdir(join(this.settings.CONFIG_DIR, 'maps'), { recursive: true })
    for (const file of routeMapFiles(this.settings.CONFIG_DIR, rendered.maps)) await this.write(file.path, file.content)
    // Always written: the file is what a restarted master loads, whatever happened to it since.
    await writeAtomic(this.configPath, rendered.config)
    this.written.set(this.configPath, rendered.config)
  }
}
