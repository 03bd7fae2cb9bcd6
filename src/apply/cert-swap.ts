import { messageOf } from '../errors.js'
import type { Logger } from 'pino'
import { certDir } from '../config-paths.js'
import { countRuntimeChange, type Metrics } from '../metrics/index.js'
import type { ServiceState } from '../state/registry.js'
import type { HaproxyPort } from './port.js'

/**
 * Certificates whose file stays the same but whose content changes (`from` → `to`) are swapped in
 * the running HAProxy through its Runtime API (management.txt §9.3): no reload, no connection
 * dropped. False when HAProxy refused one (a reload is then needed).
 */
export async function swapCertificates(
  { port, settings, metrics, log }: { port: HaproxyPort; settings: { CONFIG_DIR: string }; metrics: Metrics; log: Logger },
  from: ServiceState,
  to: ServiceState,
): Promise<boolean> {
  const dir = certDir(settings.CONFIG_DIR)
  const before = new Map(from.certificateFiles(dir).map((f) => [f.loadPath, f.pem]))
  const changed = to.certificateFiles(dir).filter((f) => before.has(f.loadPath) && before.get(f.loadPath) !== f.pem)
  for (const file of changed) {
    try {
      await port.swapCertificate(file.loadPath, file.pem)
      countRuntimeChange(metrics, 'ssl-cert')
      log.info({ certificate: file.loadPath }, 'certificate swapped without reload')
    } catch (err) {
      countRuntimeChange(metrics, 'ssl-cert', false)
      log.warn({ certificate: file.loadPath, error: messageOf(err) }, 'runtime certificate swap failed; reloading instead')
      return false
    }
  }
  return true
}
