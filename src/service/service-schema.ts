import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { z } from 'zod'
import { parseUsers, type User } from '../auth/credentials.js'
import { booleanSchema } from '../field-values.js'
import { destinationInputs, destinationSchema } from './destination-schema.js'
import { isSet, optional, optionalOf, optionalWord, refuse, text, word } from './param-fields.js'
import { compressionAlgoSchema, connectionModeSchema, mimeTypes, serviceNameSchema, weightSchema } from './param-schemas.js'
import { replaceProblem, searchProblem } from './path-rewrite.js'
import { backendExtraLine, backendExtraWords } from './backend-extra.js'
import { headerNameProblem, headerValueProblem } from '../haproxy-text.js'

/** What parsing needs from the settings. */
export interface ParseOptions {
  /** SEPARATOR: splits list values. */
  separator: string
  /** HTTPS_ONLY: every http destination redirects plain HTTP to HTTPS. */
  httpsOnly?: boolean
  /** SECRETS_DIR, where `usersSecret` files are read. */
  secretsDir?: string
  /** USERS: passwords for `users` entries given without one. */
  globalUsers?: readonly User[]
  /** TEMPLATES_DIR, the only folder `templateFePath`/`templateBePath` are read from. */
  templatesDir?: string
  /** CHECK_RESOLVERS: checkResolvers of services that do not give it (theirs wins: D8). */
  checkResolvers?: boolean
}

/** Reads `$SECRETS_DIR/dfp_users_<name>`; undefined when there is no such secret. */
function readUsersSecret(secretsDir: string, name: string): string | undefined {
  try {
    return readFileSync(join(secretsDir, `dfp_users_${name}`), 'utf8').replace(/[\r\n]+$/, '')
  } catch {
    return undefined
  }
}

/** `usersSecret`: the text of the secret it names, checked as a user list. */
const usersSecret = (secretsDir: string | undefined) =>
  word.transform((name, ctx) => {
    if (name === '') return undefined
    if (!/^[A-Za-z0-9_.-]+$/.test(name) || name.includes('..')) return refuse(ctx, name, 'must be a secret name (letters, digits, ".", "_", "-")')
    const secret = secretsDir === undefined ? undefined : readUsersSecret(secretsDir, name)
    if (secret === undefined) return refuse(ctx, name, `no secret dfp_users_${name} in the secrets folder`)
    // Whether an entry is readable does not depend on usersPassEncrypted.
    const { invalid } = parseUsers(secret, false)
    return invalid ? refuse(ctx, name, invalid) : secret
  })

/** `users`: `name:password` entries (their passwords may come from the secret or USERS later). */
const userEntries = text.transform((value, ctx) => {
  const { invalid } = parseUsers(value, false)
  return invalid ? refuse(ctx, value, invalid) : value
})

/**
 * A SEPARATOR list of header rules `Name value`: the name (an RFC 9110 token) up to the first
 * blank, the value (data, written so HAProxy sends exactly these bytes: render/backends.ts) after
 * it. `withValue` false: rules of del-header, a name alone.
 */
const headerRules = (separator: string, withValue: boolean) =>
  text.transform((value, ctx) => {
    // Blanks before a rule are layout; after it they would be part of the value: refused there.
    const rules = value
      .split(separator)
      .map((rule) => rule.trimStart())
      .filter((rule) => rule !== '')
    for (const rule of rules) {
      const blank = rule.indexOf(' ')
      const name = blank === -1 ? rule : rule.slice(0, blank)
      const problem = headerNameProblem(name) ?? (withValue ? headerValueProblem(blank === -1 ? '' : rule.slice(blank + 1)) : blank === -1 ? undefined : 'names a header only')
      if (problem) return refuse(ctx, value, problem)
    }
    return rules
  })

/** `serviceDomainAlgo`: the fetch domain ACLs match the Host header with (configuration.txt 7.3.6). */
const DOMAIN_ALGO = /^((hdr|hdr_beg|hdr_end|hdr_dom|hdr_reg|hdr_sub|hdr_str|hdr_dir|req\.hdr)\(host\)|req_ssl_sni|req\.ssl_sni)$/

/** `backendExtra`: the line as HAProxy reads it, checked word by word (backend-extra.ts) and written back from its words. */
const backendExtra = text.transform((value, ctx) => {
  const read = backendExtraWords(value)
  return 'problem' in read ? refuse(ctx, value, read.problem) : backendExtraLine(read.words)
})

const flag = optionalOf(booleanSchema)

/**
 * The service-level parameters, in the order they are checked (the first wrong one is the one a
 * refusal names), then its destinations; and the Service they make. Only these parameters are
 * read, so internal fields cannot be set from outside.
 */
function buildServiceSchema(options: ParseOptions) {
  const rules = headerRules(options.separator, true)
  const names = headerRules(options.separator, false)
  return z
    .object({
      serviceName: text.pipe(serviceNameSchema),
      serviceDomainMatchAll: flag,
      serviceDomainAlgo: word.transform((value, ctx) => (value === '' || DOMAIN_ALGO.test(value) ? value : refuse(ctx, value, 'must be hdr(host), hdr_beg(host), hdr_end(host), hdr_dom(host), hdr_reg(host), hdr_sub(host), hdr_str(host), hdr_dir(host), req.hdr(host) or req_ssl_sni'))),
      reqPathSearch: text.transform((value, ctx) => {
        const problem = value === '' ? undefined : searchProblem(value)
        return problem ? refuse(ctx, value, problem) : value
      }),
      discoveryType: optionalOf(z.string().transform((v) => v.toUpperCase()).pipe(z.enum(['DNS'], 'must be DNS (or absent)'))),
      replicas: optionalOf(z.string().regex(/^\d+$/, 'must be a whole number').transform(Number).pipe(z.number().max(10_000, 'must be at most 10000'))),
      sessionType: optionalOf(z.enum(['sticky-server'], 'must be sticky-server')),
      weight: optionalOf(weightSchema),
      serviceColor: optionalOf(serviceNameSchema),
      userDef: text,
      aclName: optionalOf(serviceNameSchema),
      isDefaultBackend: flag,
      redirectWhenHttpProto: flag,
      redirectUnlessHttpsProto: flag,
      compressionAlgo: optionalOf(compressionAlgoSchema),
      compressionType: optionalOf(mimeTypes),
      checkResolvers: flag,
      proxyInstanceName: optionalWord,
      reqPathReplace: text.transform((value, ctx) => {
        const problem = replaceProblem(value)
        return problem ? refuse(ctx, value, problem) : value
      }),
      addReqHeader: rules,
      setReqHeader: rules,
      addResHeader: rules,
      setResHeader: rules,
      delReqHeader: names,
      delResHeader: names,
      connectionMode: optionalOf(connectionModeSchema),
      backendExtra,
      usersPassEncrypted: flag,
      usersSecret: usersSecret(options.secretsDir),
      users: userEntries,
      destinations: z.array(destinationSchema(options.separator, options.httpsOnly === true)),
    })
    .transform((given) => {
      const { serviceName, discoveryType, sessionType, replicas, reqPathSearch } = given
      // serviceDomainMatchAll is the original's deprecated way to ask for hdr_dom(host).
      const serviceDomainAlgo = given.serviceDomainAlgo || (given.serviceDomainMatchAll ? 'hdr_dom(host)' : '')
      return {
        serviceName,
        /** Prefix of every ACL and backend name (inventory §5.8); equals serviceName for now. */
        aclName: given.aclName ?? serviceName,
        /** Fetch for domain ACLs; the SERVICE_DOMAIN_ALGO setting when absent. */
        ...optional('serviceDomainAlgo', serviceDomainAlgo || undefined),
        isDefaultBackend: given.isDefaultBackend ?? false,
        /** Redirect to HTTPS when X-Forwarded-Proto is http (TLS ended before the proxy). */
        redirectWhenHttpProto: given.redirectWhenHttpProto ?? false,
        /** Redirect to HTTPS unless X-Forwarded-Proto is https. */
        redirectUnlessHttpsProto: given.redirectUnlessHttpsProto ?? false,
        /** `compression algo` (and `compression type`) in the service's http backends. */
        ...optional('compressionAlgo', given.compressionAlgo),
        ...optional('compressionType', given.compressionType),
        /** Health checks on the servers (` check`), names resolved through `resolvers docker`. */
        checkResolvers: given.checkResolvers ?? options.checkResolvers ?? false,
        /** `DNS`: one `server-template` on the host, with `replicas` slots. */
        ...optional('discoveryType', discoveryType),
        /** Slots of the server-template (DNS discovery, sticky sessions; kept only with those); absent: a default. */
        // Only server-templates use the count; elsewhere it would make equal services differ.
        ...optional('replicas', replicas === undefined || replicas === 0 || (discoveryType === undefined && sessionType === undefined) ? undefined : replicas),
        /** `sticky-server`: a cookie binds each client to one task. */
        ...optional('sessionType', sessionType),
        /** HAProxy's server weight (0–256) of its servers; services that share a route with it share by weight (docs/usage.md "Weights"). */
        ...optional('weight', given.weight),
        /** Blue-green (the Docker Flow CLI): its servers are the tasks of `<serviceName>-<serviceColor>`. */
        ...optional('serviceColor', given.serviceColor),
        /** The proxy instance the service is meant for (FILTER_PROXY_INSTANCE_NAME). */
        ...optional('proxyInstanceName', given.proxyInstanceName),
        /** Free text for custom templates. */
        ...optional('userDef', given.userDef || undefined),
        /** Deprecated single rewrite, applied before reqPathSearchReplace. */
        ...(reqPathSearch === '' ? {} : { reqPathSearch, reqPathReplace: given.reqPathReplace }),
        /** Header rules of its http backends, in the original's order (inventory §5.6). */
        headers: {
          addReqHeader: given.addReqHeader,
          setReqHeader: given.setReqHeader,
          addResHeader: given.addResHeader,
          setResHeader: given.setResHeader,
          delReqHeader: given.delReqHeader,
          delResHeader: given.delResHeader,
        },
        /** `option <connectionMode>` in its http backends. */
        ...optional('connectionMode', given.connectionMode),
        /** A line of the user's own appended to each of its backends. */
        ...optional('backendExtra', given.backendExtra.trim() || undefined),
        /** Users allowed on its http backends (`users`, `usersSecret`); they replace USERS for it. */
        users: serviceUsers(given, options),
        destinations: given.destinations,
      }
    })
}

/** The service's users: `users`, completed and extended by the `usersSecret` file. */
function serviceUsers(given: { usersPassEncrypted?: boolean | undefined; usersSecret?: string | undefined; users: string }, options: ParseOptions): User[] {
  const encrypted = given.usersPassEncrypted ?? false
  const fromSecret = given.usersSecret === undefined ? [] : parseUsers(given.usersSecret, encrypted).users
  const { users } = parseUsers(given.users, encrypted, [...fromSecret, ...(options.globalUsers ?? [])])
  const names = new Set(users.map((u) => u.name))
  return [...users, ...fromSecret.filter((u) => !names.has(u.name))]
}

export type ServiceSchema = ReturnType<typeof buildServiceSchema>

// zod compiles an object schema on its first parse (about a millisecond here), so schemas are
// kept per the options that shape them: options objects made per call (tests, the benchmark)
// share one, and the daemon, whose settings are parsed once, builds one.
const schemas = new Map<string, ServiceSchema>()
/** The schema of a service's parameters under these settings. */
export function serviceSchema(options: ParseOptions): ServiceSchema {
  const { separator, httpsOnly, secretsDir, checkResolvers, globalUsers } = options
  const key = JSON.stringify([separator, httpsOnly === true, secretsDir, checkResolvers, globalUsers])
  let schema = schemas.get(key)
  if (schema === undefined) schemas.set(key, (schema = buildServiceSchema(options)))
  return schema
}

/**
 * The pre-step of the service schema: the flat parameters as its fields, with the deprecated
 * header names standing in for the current ones, `reqPathReplace` only with `reqPathSearch`, and
 * the destinations' own maps; `paramOf(path)` names the parameter a schema issue is about.
 */
export function serviceInput(values: Record<string, string>): { fields: Record<string, unknown>; paramOf: (path: PropertyKey[]) => string } {
  const fields: Record<string, unknown> = { ...values }
  const params: Record<string, string> = {}
  // addHeader and setHeader are the original's deprecated names.
  for (const [field, alias] of [['addReqHeader', 'addHeader'], ['setReqHeader', 'setHeader']] as const) {
    if (isSet(values, field)) continue
    fields[field] = values[alias]
    params[field] = alias
  }
  if (!isSet(values, 'reqPathSearch')) delete fields.reqPathReplace
  const destinations = destinationInputs(values)
  fields.destinations = destinations.map((destination) => destination.fields)
  const paramOf = ([field, index, destinationField]: PropertyKey[]): string =>
    field === 'destinations' ? (destinations[index as number]?.params[destinationField as string] ?? String(destinationField)) : (params[field as string] ?? String(field))
  return { fields, paramOf }
}
