import closeWithGrace from 'close-with-grace'
import { pino } from 'pino'
import { buildApp } from './app.js'
import { ConfigApplier } from './haproxy/apply.js'
import { createMetrics } from './metrics/index.js'
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
const logger = pino({
  level: settings.LOG_LEVEL,
  redact: ['req.headers.authorization', '*.password', '*.users', '*.Users'],
  // Query strings carry service parameters (later passwords among them): log the path only.
  serializers: {
    req: (req: { method: string; url: string; ip?: string }) => ({ method: req.method, url: req.url.split('?')[0], remoteAddress: req.ip }),
  },
})
const metrics = createMetrics()
const applier = new ConfigApplier(settings, logger, metrics)

try {
  await applier.start()
} catch (err) {
  logger.fatal({ err }, 'could not start haproxy')
  await applier.close().catch(() => undefined)
  process.exit(1)
}

const app = buildApp({ settings, applier, metrics, logger })

closeWithGrace({ delay: 15_000, logger }, async ({ err, signal }) => {
  if (err) logger.error({ err }, 'stopping after an error')
  logger.info({ signal }, 'stopping')
  await app.close()
  await applier.close()
})

await app.listen({ host: settings.IP, port: settings.PORT })
