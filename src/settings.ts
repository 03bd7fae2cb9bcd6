import { messageOf } from './errors.js'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { z } from 'zod'
import { isIP } from 'node:net'
import { type ApiUser, parseApiUsers } from './auth/api-users.js'
import { type User, parseUsers } from './auth/credentials.js'
import { booleanSchema, commaList, COMPRESSION_ALGOS, listenerUrl } from './field-values.js'
import { readHostsFileNames } from './hosts-file.js'

/** Folder of the project (one level above `src/` and `dist/`). */
export const PROJECT_DIR = fileURLToPath(new URL('..', import.meta.url))

const noControl = /^[^\x00-\x1f\x7f]*$/
const text = z.string().regex(noControl, 'must not contain newlines or control characters')
const seconds = z.string().regex(/^\d+$/, 'must be a whole number of seconds')
const integer = (min: number, max: number) =>
  z.string().regex(/^\d+$/, 'must be a whole number').transform(Number).pipe(z.number().min(min).max(max))
const port = integer(1, 65535)
const nonEmpty = text.min(1, 'must not be empty')
const envName = nonEmpty.regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'must be a variable name')
const compressionAlgos: readonly string[] = COMPRESSION_ALGOS
// Credentials may be newline separated (a secret file); other control characters are refused.
const credentialText = z.string().regex(/^[^\x00-\x09\x0b-\x1f\x7f]*$/, 'must not contain control characters other than newlines')
/** A file's text, or '' when it cannot be read. */
const readPem = (path: string) => {
  try {
    return readFileSync(path, 'utf8')
  } catch {
    return ''
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
 * Who HAProxy's workers run as unless HAPROXY_USER says: `haproxy` (Debian's package creates it)
 * when the daemon is root, so a worker that is made to misbehave cannot read root's files.
 */
function defaultHaproxyUser(): string {
  if (process.getuid?.() !== 0) return ''
  try {
    return /^haproxy:/m.test(readFileSync('/etc/passwd', 'utf8')) ? 'haproxy' : ''
  } catch {
    return ''
  }
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
  /**
   * The user (and group of the same name) HAProxy's workers run as; `none`: the daemon's user;
   * `auto`: `haproxy` when the daemon runs as root and that user exists, else none.
   */
  HAPROXY_USER: {
    default: 'auto',
    schema: z
      .string()
      .regex(/^([a-z_][a-z0-9_-]*)?$/, 'must be a user name (lowercase letters, digits, "_", "-"), auto or none')
      .transform((name) => (name === 'auto' ? defaultHaproxyUser() : name === 'none' ? '' : name)),
  },
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
  /** Change requests of the API waiting to be applied at most; more are answered 503 (docs/config.md). */
  MAX_PENDING_CHANGES: { default: '4096', schema: integer(1, 1_000_000) },

  HTTPS_ONLY: { default: 'false', schema: booleanSchema },
  /** Users of every http backend without its own; read into GLOBAL_USERS with USERS_PASS_ENCRYPTED. */
  USERS: { default: '', schema: credentialText },
  USERS_PASS_ENCRYPTED: { default: 'false', schema: booleanSchema },
  CRT_LIST_PATH: { default: '', schema: text },
  PREFERRED_CERTIFICATE: { default: '', schema: text },
  ENABLE_H2: { default: 'true', schema: booleanSchema },
  CA_FILE: { default: '', schema: text },

  /** Basic auth on the control API (off when empty): `user:password` or `user:$6$hash`, comma or newline separated. */
  API_USERS: {
    default: '',
    schema: credentialText.transform((value, ctx): ApiUser[] => {
      try {
        return parseApiUsers(value)
      } catch (err) {
        ctx.addIssue({ code: 'custom', message: messageOf(err) })
        return z.NEVER
      }
    }),
  },
  /**
   * With API_USERS: the `user:password` replicas use for the calls they make to each other on
   * their own (ACME). Default: the first API_USERS entry with a clear-text password.
   */
  REPLICA_USER: { default: '', schema: z.string().regex(/^$|^[^\s:]+:\S+$/, 'must be user:password') },
  /** With API_USERS: the status page stays readable without credentials unless false. */
  STATUS_PUBLIC: { default: 'true', schema: booleanSchema },

  /** Read as the listeners' base URLs. */
  LISTENER_ADDRESS: {
    default: '',
    schema: text.transform((value, ctx): string[] => {
      try {
        return commaList(value).map(listenerUrl)
      } catch {
        ctx.addIssue({ code: 'custom', message: 'must be a comma list of host, host:port or http(s) URLs' })
        return z.NEVER
      }
    }),
  },
  RELOAD_INTERVAL: { default: '5000', schema: integer(100, 3_600_000) },
  REPEAT_RELOAD: { default: 'false', schema: booleanSchema },
  RELOAD_ATTEMPTS: { default: '5', schema: integer(1, 1000) },
  SERVICE_NAME: { default: 'proxy', schema: nonEmpty.regex(/^[A-Za-z0-9][A-Za-z0-9_.-]*$/, 'must be a service name') },
  // Statistics page (inventory §5.6): *_ENV name the variables (or dfp_<name> secrets) that hold
  // the values; stats are on when both user and password are set.
  STATS_USER_ENV: { default: 'STATS_USER', schema: envName },
  STATS_PASS_ENV: { default: 'STATS_PASS', schema: envName },
  STATS_URI_ENV: { default: 'STATS_URI', schema: envName },
  STATS_PORT: { default: '', schema: z.union([z.literal(''), port]) },
  CAPTURE_REQUEST_HEADER: {
    default: '',
    schema: text.refine(
      (value) => commaList(value).every((item) => /^[A-Za-z0-9!#$%&'*+.^_`|~-]+:\d{1,5}$/.test(item) && Number(item.split(':')[1]) > 0),
      'must be a comma list of header:length entries, e.g. X-Request-Id:36',
    ),
  },
  COMPRESSION_ALGO: {
    default: '',
    schema: text.refine((value) => value.split(/\s+/).filter(Boolean).every((algo) => compressionAlgos.includes(algo)), `must be a space-separated list of ${compressionAlgos.join(', ')}`),
  },
  COMPRESSION_TYPE: { default: '', schema: text.regex(/^[\w.+\/*; =-]*$/, 'must be a space-separated list of MIME types') },
  CHECK_RESOLVERS: { default: 'false', schema: booleanSchema },
  DO_NOT_RESOLVE_ADDR: { default: 'false', schema: booleanSchema },
  /** The original's base template: not used (dfp's base is its own); set, it is warned about at start. */
  CFG_TEMPLATE_PATH: { default: '', schema: text },
  TERMINATE_ON_RELOAD: { default: 'false', schema: booleanSchema },
  // Only the exact value `false` turns the DNS check of a reconfigured service on (inventory §4).
  SKIP_ADDRESS_VALIDATION: { default: 'true', schema: z.string().transform((v) => v.toLowerCase() !== 'false') },
  PROXY_INSTANCE_NAME: { default: 'docker-flow', schema: text },
  FILTER_PROXY_INSTANCE_NAME: { default: 'false', schema: booleanSchema },
  DEFAULT_PROTOCOL: { default: 'http', schema: z.enum(['http', 'tcp']) },
  DEBUG: { default: 'false', schema: booleanSchema },
  DEBUG_ERRORS_ONLY: { default: 'false', schema: booleanSchema },
  DEBUG_HTTP_FORMAT: { default: '', schema: text },
  DEBUG_TCP_FORMAT: { default: '', schema: text },
  DEBUG_LOG_ADDRESS: {
    default: '127.0.0.1:1514',
    schema: nonEmpty.refine((v) => /^(\d{1,3}\.){3}\d{1,3}:\d{1,5}$/.test(v) && isIP(v.split(':')[0] ?? '') === 4, 'must be IPv4:port'),
  },
  DISPLAY_CONFIG_ON_ERROR: { default: 'false', schema: booleanSchema },
  // Built-in ACME (docs/certs.md): the directory, the default contact, a CA to trust for a
  // private directory, and the first retry delay after a failed order.
  ACME_DIRECTORY_URL: { default: 'https://acme-v02.api.letsencrypt.org/directory', schema: nonEmpty.refine((v) => URL.canParse(v) && /^https?:\/\//.test(v), 'must be an http(s) URL') },
  ACME_EMAIL: { default: '', schema: text.regex(/^$|^[^\s@,<>]+@[^\s@,<>]+\.[^\s@,<>]+$/, 'must be an email address') },
  ACME_CA_FILE: { default: '', schema: text.refine((v) => v === '' || /-----BEGIN CERTIFICATE-----/.test(readPem(v)), 'must be a readable PEM file of CA certificates') },
  ACME_RETRY_MIN: { default: '60', schema: integer(1, 86_400) },
  /** Read as a list of servers. */
  DNS_SERVERS: {
    default: '',
    schema: text.transform(commaList).refine((servers) => servers.every(isDnsServer), 'must be a comma list of IP or IP:port (IPv6 as [IP]:port)'),
  },
} as const satisfies Record<string, { default: string; schema: z.ZodType }>

type Variables = typeof variables
/** A service defined by `DFP_SERVICE[_N]_*` variables, as reconfigure parameters (inventory §3.7). */
export interface EnvService {
  /** `DFP_SERVICE` or `DFP_SERVICE_<N>`, for messages. */
  prefix: string
  params: Record<string, string>
}
export type Settings = Readonly<
  { [K in keyof Variables]: z.output<Variables[K]['schema']> } & {
    SECRETS_DIR: string
    /** Values of the variables STATS_USER_ENV, STATS_PASS_ENV and STATS_URI_ENV name. */
    STATS_USER: string
    STATS_PASS: string
    STATS_URI: string
    /** The names /etc/hosts defines (src/hosts-file.ts): their servers load with the system lookup. */
    HOSTS_FILE_NAMES: ReadonlySet<string>
    /** Parsed as reconfigure requests where the daemon starts (env-services.ts). */
    ENV_SERVICES: readonly EnvService[]
    /** USERS as userlist users (USERS_PASS_ENCRYPTED: the passwords are crypt(3) hashes). */
    GLOBAL_USERS: User[]
    /** What parsing a service's parameters takes from the settings (service-schema.ts ParseOptions). */
    PARSE_OPTIONS: { separator: string; httpsOnly: boolean; secretsDir: string; globalUsers: readonly User[]; templatesDir: string; checkResolvers: boolean }
  }
>
const variableNames = Object.keys(variables) as (keyof Variables)[]

/** Variables holding credentials: their values stay out of error messages. */
const hiddenValues = new Set<string>(['USERS', 'API_USERS', 'REPLICA_USER'])

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
  if (out.USERS !== undefined && out.USERS_PASS_ENCRYPTED !== undefined) {
    const users = parseUsers(out.USERS as string, out.USERS_PASS_ENCRYPTED as boolean)
    if (users.invalid || (users.users.length === 0 && (out.USERS as string).trim() !== '')) {
      problems.push('USERS must be user:password entries (comma or newline separated, no spaces) (value not shown)')
    }
    out.GLOBAL_USERS = users.users
  }
  if (problems.length) throw new SettingsError(problems)
  Object.assign(out, statsValues(out as Record<string, string>, env, secretsDir, problems))
  out.PARSE_OPTIONS = {
    separator: out.SEPARATOR,
    httpsOnly: out.HTTPS_ONLY,
    secretsDir,
    globalUsers: out.GLOBAL_USERS,
    templatesDir: out.TEMPLATES_DIR,
    checkResolvers: out.CHECK_RESOLVERS,
  } as Settings['PARSE_OPTIONS']
  out.HOSTS_FILE_NAMES = readHostsFileNames()
  out.ENV_SERVICES = envServices(env, out.DEFAULT_PROTOCOL as string, problems)
  if (problems.length) throw new SettingsError(problems)
  return Object.freeze(out) as Settings
}

/** Reads a variable as the original read most: its secret first, then a non-empty value. */
const secretOrEnv = (secretsDir: string, env: NodeJS.ProcessEnv, name: string) => readSecret(secretsDir, name) ?? env[name] ?? ''

/** STATS_USER/PASS/URI through the names STATS_*_ENV give (inventory §4). */
function statsValues(settings: Record<string, string>, env: NodeJS.ProcessEnv, secretsDir: string, problems: string[]) {
  const read = (indirection: string) => {
    const name = settings[indirection] as string
    return { name, value: secretOrEnv(secretsDir, env, name) }
  }
  const user = read('STATS_USER_ENV')
  const pass = read('STATS_PASS_ENV')
  const uri = read('STATS_URI_ENV')
  if (!/^[^\s:\x00-\x1f\x7f]*$/.test(user.value)) problems.push(`${user.name} must not contain blanks, ':' or control characters`)
  if (!/^[^\s\x00-\x1f\x7f]*$/.test(pass.value)) problems.push(`${pass.name} must not contain blanks or control characters`)
  if (uri.value !== '' && !/^\/[^\s\x00-\x1f\x7f]*$/.test(uri.value)) problems.push(`${uri.name} must be a path starting with / and without blanks (got ${JSON.stringify(uri.value)})`)
  return { STATS_USER: user.value, STATS_PASS: pass.value, STATS_URI: uri.value || '/admin?stats' }
}

/** `SERVICE_PATH` → `servicePath`, `PORT_2` → `port.2`, `DISCOVERYTYPE` → `discoveryType`. */
function envParamName(field: string): string {
  const indexed = /^(.+)_(\d+)$/.exec(field)
  const base = indexed ? indexed[1]! : field
  const special: Record<string, string> = { DISCOVERYTYPE: 'discoveryType' }
  const name = special[base] ?? base.toLowerCase().replace(/_([a-z0-9])/g, (_, c: string) => c.toUpperCase())
  return indexed ? `${name}.${indexed[2]}` : name
}

/**
 * Services defined in the environment: `DFP_SERVICE_<FIELD>` and `DFP_SERVICE_<N>_<FIELD>`, each
 * group with a SERVICE_NAME. Every numbered group is read, gaps or not; indexed fields
 * (`_PORT_2`) are destinations as `port.2` is in a request (the original gave all of them index 0: D20).
 */
function envServices(env: NodeJS.ProcessEnv, defaultProtocol: string, problems: string[]): EnvService[] {
  const groups = new Map<string, Record<string, string>>()
  for (const [key, value] of Object.entries(env)) {
    const match = /^DFP_SERVICE(?:_(\d+))?_([A-Z][A-Z0-9_]*)$/.exec(key)
    if (!match || value === undefined) continue
    const prefix = match[1] ? `DFP_SERVICE_${match[1]}` : 'DFP_SERVICE'
    const params = groups.get(prefix) ?? {}
    params[envParamName(match[2]!)] = value
    groups.set(prefix, params)
  }
  const order = (prefix: string) => (prefix === 'DFP_SERVICE' ? 0 : Number(prefix.slice('DFP_SERVICE_'.length)))
  const services: EnvService[] = []
  for (const prefix of [...groups.keys()].sort((a, b) => order(a) - order(b))) {
    const params = groups.get(prefix)!
    if (!params.serviceName) {
      problems.push(`${prefix}_* variables are set but ${prefix}_SERVICE_NAME is not`)
      continue
    }
    // The original read REPLICAS=0 as "add anyway"; a defined service is never a removal.
    if (params.replicas === '0') delete params.replicas
    // DEFAULT_PROTOCOL is the reqMode of env services that name none (inventory §4).
    params.reqMode ??= defaultProtocol
    services.push({ prefix, params })
  }
  return services
}
