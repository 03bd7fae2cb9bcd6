import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { z } from 'zod'
import { isIP } from 'node:net'
import { parseApiUsers } from './auth/api-users.js'
import { parseUsers } from './service/params.js'
import { listenerUrl } from './swarm/address.js'

/** Folder of the project (one level above `src/` and `dist/`). */
export const PROJECT_DIR = fileURLToPath(new URL('..', import.meta.url))

const noControl = /^[^\x00-\x1f\x7f]*$/
const text = z.string().regex(noControl, 'must not contain newlines or control characters')
const seconds = z.string().regex(/^\d+$/, 'must be a whole number of seconds')
const integer = (min: number, max: number) =>
  z.string().regex(/^\d+$/, 'must be a whole number').transform(Number).pipe(z.number().min(min).max(max))
const port = integer(1, 65535)
const nonEmpty = text.min(1, 'must not be empty')
// strconv.ParseBool forms, as the original read these variables.
const boolean = z
  .string()
  .transform((v) => v.toLowerCase())
  .pipe(z.enum(['1', 't', 'true', '0', 'f', 'false'], 'must be true or false'))
  .transform((v) => ['1', 't', 'true'].includes(v))

const commaItems = (value: string) =>
  value
    .split(',')
    .map((item) => item.trim())
    .filter((item) => item !== '')
const canParse = (parse: () => unknown) => {
  try {
    parse()
    return true
  } catch {
    return false
  }
}
/** What node:dns `setServers` accepts: an IP, `IPv4:port` or `[IPv6]:port`. */
const isDnsServer = (item: string) => {
  const bracketed = /^\[([^\]]+)\](?::\d{1,5})?$/.exec(item)
  if (bracketed) return isIP(bracketed[1] ?? '') === 6
  const [host = '', port, extra] = item.split(':')
  if (isIP(item) === 6) return true
  return extra === undefined && isIP(host) === 4 && (port === undefined || (/^\d{1,5}$/.test(port) && Number(port) <= 65535))
}

/**
 * Every variable the daemon reads, with the official image's default (inventory §4).
 * Each can also be given as a Docker secret `$SECRETS_DIR/dfp_<lowercase name>`.
 */
const variables = {
  IP: { default: '0.0.0.0', schema: nonEmpty },
  PORT: { default: '8080', schema: port },
  CONFIG_DIR: { default: '/cfg', schema: nonEmpty },
  CERTS_DIR: { default: '/certs', schema: nonEmpty },
  TEMPLATES_DIR: { default: '/templates', schema: nonEmpty },
  ERRORFILES_DIR: { default: join(PROJECT_DIR, 'haproxy', 'errorfiles'), schema: nonEmpty },
  HAPROXY_BIN: { default: 'haproxy', schema: nonEmpty },
  LOG_LEVEL: { default: 'info', schema: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']) },

  DEFAULT_PORTS: { default: '80,443:ssl', schema: nonEmpty },
  BIND_PORTS: { default: '', schema: text },
  DEFAULT_REQ_MODE: { default: 'http', schema: z.enum(['http', 'tcp']) },
  CONNECTION_MODE: { default: 'http-keep-alive', schema: z.enum(['http-keep-alive', 'http-server-close', 'httpclose']) },
  EXTRA_GLOBAL: { default: '', schema: text },
  EXTRA_FRONTEND: { default: '', schema: text },
  RESOLVERS: { default: 'nameserver dns 127.0.0.11:53', schema: nonEmpty },
  SEPARATOR: { default: ',', schema: nonEmpty },
  SERVICE_DOMAIN_ALGO: { default: 'hdr_beg(host)', schema: nonEmpty.regex(/^\S+$/, 'must be one HAProxy fetch without spaces') },
  SSL_BIND_CIPHERS: {
    default: 'ECDH+AESGCM:ECDH+CHACHA20:DH+AESGCM:ECDH+AES256:DH+AES256:ECDH+AES128:DH+AES:RSA+AESGCM:RSA+AES:!aNULL:!MD5:!DSS',
    schema: nonEmpty,
  },
  SSL_BIND_OPTIONS: { default: 'no-sslv3', schema: nonEmpty },
  TIMEOUT_CONNECT: { default: '5', schema: seconds },
  TIMEOUT_CLIENT: { default: '20', schema: seconds },
  TIMEOUT_SERVER: { default: '20', schema: seconds },
  TIMEOUT_QUEUE: { default: '30', schema: seconds },
  TIMEOUT_TUNNEL: { default: '3600', schema: seconds },
  TIMEOUT_HTTP_REQUEST: { default: '5', schema: seconds },
  TIMEOUT_HTTP_KEEP_ALIVE: { default: '15', schema: seconds },
  HARD_STOP_AFTER: { default: '1h', schema: nonEmpty.regex(/^\d+(ms|s|m|h|d)?$/, 'must be an HAProxy time such as 30s or 1h') },
  RELOAD_TIMEOUT: { default: '30', schema: integer(1, 3600) },

  HTTPS_ONLY: { default: 'false', schema: boolean },
  USERS: {
    default: '',
    schema: z
      .string()
      .regex(/^[^\x00-\x09\x0b-\x1f\x7f]*$/, 'must not contain control characters other than newlines')
      .refine((v) => v.trim() === '' || (!parseUsers(v, false).invalid && parseUsers(v, false).users.length > 0), 'must be user:password entries (comma or newline separated, no spaces)'),
  },
  USERS_PASS_ENCRYPTED: { default: 'false', schema: boolean },
  CRT_LIST_PATH: { default: '', schema: text },
  PREFERRED_CERTIFICATE: { default: '', schema: text },
  ENABLE_H2: { default: 'true', schema: boolean },
  CA_FILE: { default: '', schema: text },

  /** Basic auth on the control API (off when empty): `user:password` or `user:$6$hash`, comma or newline separated. */
  API_USERS: {
    default: '',
    schema: z
      .string()
      .regex(/^[^\x00-\x09\x0b-\x1f\x7f]*$/, 'must not contain control characters other than newlines')
      .superRefine((value, ctx) => {
        try {
          parseApiUsers(value)
        } catch (err) {
          ctx.addIssue({ code: 'custom', message: (err as Error).message })
        }
      }),
  },
  /** With API_USERS: the status page stays readable without credentials unless false. */
  STATUS_PUBLIC: { default: 'true', schema: boolean },

  LISTENER_ADDRESS: {
    default: '',
    schema: text.refine((value) => commaItems(value).every((item) => canParse(() => listenerUrl(item))), 'must be a comma list of host, host:port or http(s) URLs'),
  },
  RELOAD_INTERVAL: { default: '5000', schema: integer(100, 3_600_000) },
  REPEAT_RELOAD: { default: 'false', schema: boolean },
  RELOAD_ATTEMPTS: { default: '5', schema: integer(1, 1000) },
  SERVICE_NAME: { default: 'proxy', schema: nonEmpty.regex(/^[A-Za-z0-9][A-Za-z0-9_.-]*$/, 'must be a service name') },
  DNS_SERVERS: {
    default: '',
    schema: text.refine((value) => commaItems(value).every(isDnsServer), 'must be a comma list of IP or IP:port (IPv6 as [IP]:port)'),
  },
} as const satisfies Record<string, { default: string; schema: z.ZodType }>

type Variables = typeof variables
export type Settings = Readonly<
  { [K in keyof Variables]: z.output<Variables[K]['schema']> } & { SECRETS_DIR: string }
>
export const variableNames = Object.keys(variables) as (keyof Variables)[]

/** Variables holding credentials: their values stay out of error messages. */
const hiddenValues = new Set<string>(['USERS', 'API_USERS'])

export class SettingsError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid settings: ${problems.join('; ')}`)
  }
}

/** Reads `$SECRETS_DIR/dfp_<name>`; a missing file means "no secret". */
function readSecret(secretsDir: string, name: string): string | undefined {
  try {
    return readFileSync(join(secretsDir, `dfp_${name.toLowerCase()}`), 'utf8').replace(/[\r\n]+$/, '')
  } catch {
    return undefined
  }
}

/**
 * Builds the frozen settings from the environment and secrets: a secret file wins (even empty,
 * as in the original), then a non-empty variable, then the default. Throws one SettingsError
 * listing every bad variable.
 */
export function loadSettings(env: NodeJS.ProcessEnv = process.env): Settings {
  const secretsDir = env.SECRETS_DIR || '/run/secrets'
  const out: Record<string, unknown> = { SECRETS_DIR: secretsDir }
  const problems: string[] = []
  for (const name of variableNames) {
    const def = variables[name]
    const raw = readSecret(secretsDir, name) ?? (env[name] ? env[name] : def.default)
    const parsed = (def.schema as z.ZodType).safeParse(raw)
    if (parsed.success) out[name] = parsed.data
    // Passwords are never echoed back.
    else problems.push(`${name} ${parsed.error.issues.map((i) => i.message).join(', ')} (${hiddenValues.has(name) ? 'value not shown' : `got ${JSON.stringify(raw)}`})`)
  }
  if (problems.length) throw new SettingsError(problems)
  return Object.freeze(out) as Settings
}
