import { pino, type DestinationStream, type Logger } from 'pino'

/**
 * Paths pino blanks out wherever they appear in a log object (one level of `*` each):
 * credentials, password hashes, certificate bodies and the parameters that carry them.
 */
export const redactedPaths = [
  'req.headers.authorization',
  'req.headers.cookie',
  'headers.authorization',
  'authorization',
  'password',
  'pem',
  'users',
  'serviceCert',
  '*.password',
  '*.passwordHash',
  '*.users',
  '*.Users',
  '*.pem',
  '*.key',
  '*.serviceCert',
  '*.authorization',
  '*.apiUsers',
  '*.API_USERS',
  '*.USERS',
  '*.*.password',
  '*.*.users',
  '*.*.pem',
  '*.*.serviceCert',
]

/**
 * The daemon's logger: JSON lines on stdout (or `destination`), secrets redacted. Requests are
 * logged with their path only: query strings carry service parameters, passwords among them.
 */
export function createLogger(level: string, destination?: DestinationStream): Logger {
  const options = {
    level,
    redact: { paths: redactedPaths, censor: '[redacted]' },
    serializers: {
      req: (req: { method?: string; url?: string; ip?: string }) => ({ method: req.method, url: (req.url ?? '').split('?')[0], remoteAddress: req.ip }),
    },
  }
  return destination ? pino(options, destination) : pino(options)
}
