// First: the heap's growth is set before the modules below allocate.
import './heap-tuning.js'
import closeWithGrace from 'close-with-grace'
import { createDaemon } from './daemon.js'
import { createLogger } from './logger.js'
import { loadSettings, SettingsError } from './settings.js'

/** A bad variable or DFP_SERVICE_* service stops the start with its message (exit code 2). */
function orExit<T>(make: () => T): T {
  try {
    return make()
  } catch (err) {
    if (err instanceof SettingsError) {
      process.stderr.write(`dfp: ${err.message}\n`)
      process.exit(2)
    }
    throw err
  }
}

const settings = orExit(() => loadSettings())
const logger = createLogger(settings.LOG_LEVEL)
const daemon = orExit(() => createDaemon(settings, logger))

// Signals are handled from the start on: a SIGTERM while HAProxy is being started (seconds with
// 50 000 saved services) lets the start finish, then stops HAProxy, instead of leaving it running.
const starting = daemon.start()
let stopping = false
closeWithGrace({ delay: 15_000, logger }, async ({ err, signal }) => {
  stopping = true
  if (err) logger.error({ err }, 'stopping after an error')
  logger.info({ signal }, 'stopping')
  if (!(await starting.then(() => true, () => false))) return
  await daemon.close()
})

try {
  await starting
} catch (err) {
  logger.fatal({ err }, 'could not start haproxy')
  await daemon.applier.close().catch(() => undefined)
  process.exit(1)
}

if (!stopping) await daemon.app.listen({ host: settings.IP, port: settings.PORT })
