import { certDir } from '../config-paths.js'
import { commaList, crtListPath, type RenderSettings, type RenderState } from './common.js'

/** `*` globs of PREFERRED_CERTIFICATE as anchored regular expressions. */
const globs = (list: string) =>
  commaList(list).map((glob) => new RegExp(`^${glob.replace(/[.+?^${}()|[\]\\]/g, '\\$&').replaceAll('*', '.*')}$`))

/**
 * The crt-list: one certificate file per line, folder files then secrets then uploaded ones;
 * files matching a PREFERRED_CERTIFICATE glob come first, in the order of the globs (§5.7).
 * HAProxy serves the first entry when no SNI matches.
 */
export function renderCrtList(state: RenderState, settings: RenderSettings): string {
  const files = state.certificateFiles(certDir(settings.CONFIG_DIR))
  const preferred = globs(settings.PREFERRED_CERTIFICATE)
  const bucket = (name: string) => {
    const index = preferred.findIndex((glob) => glob.test(name))
    return index === -1 ? preferred.length : index
  }
  const ordered = files.map((file, position) => ({ file, position, bucket: bucket(file.name) }))
  ordered.sort((a, b) => a.bucket - b.bucket || a.position - b.position)
  return ordered.map(({ file }) => `${file.loadPath}\n`).join('')
}

/** What `:ssl` in a port entry becomes (inventory §5.7), or undefined while nothing can be served. */
export function sslBindOptions(hasCertificates: boolean, settings: RenderSettings): string | undefined {
  if (!hasCertificates) return undefined
  const alpn = settings.ENABLE_H2 ? 'h2,http/1.1' : 'http/1.1'
  const ca = settings.CA_FILE ? ` ca-file ${settings.CA_FILE} verify optional` : ''
  return ` ssl crt-list ${crtListPath(settings)} alpn ${alpn}${ca}`
}
