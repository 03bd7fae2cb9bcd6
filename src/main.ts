import closeWithGrace from 'close-with-grace'
import { createDaemon } from './daemon.js'
import { createLogger } from './logger.js'
import { loadSettings, SettingsError } from './settings.js'

function readSettings() {
  try {
    return loadSettings()
  } catch (err) {
    if (err instanceof SettingsError) {
      process.stderr.write(`dfp: ${err.message}\n`)
      process.exit(2)
    }
    throw err
  }
}

const settings = readSettings()
const logger = createLogger(settings.LOG_LEVEL)
const daemon = createDaemon(settings, logger)

try {
  await daemon.start()
} catch (err) {
  logger.fatal({ err }, 'could not start haproxy')
  await daemon.applier.close().catch(() => undefined)
  process.exit(1)
}

closeWithGrace({ delay: 15_000, logger }, async ({ err, signal }) => {
  if (err) logger.error({ err }, 'stopping after an error')
  logger.info({ signal }, 'stopping')
  await daemon.close()
})

await daemon.app.listen({ host: settings.IP, port: settings.PORT })
