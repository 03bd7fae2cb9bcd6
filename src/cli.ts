#!/usr/bin/env node
import { messageOf } from './errors.js'
/**
 * `dfp`: the control API from a shell, e.g. inside the container
 * (`docker exec proxy dfp reconfigure --service-name go-demo --service-path /demo --port 8080`).
 * Every `--kebab-case value` option of reconfigure becomes the camelCase parameter.
 */
const usage = `Usage: dfp <command> [options]

Commands:
  reconfigure --service-name NAME [--any-param VALUE ...]   add or update a service
  remove --service-name NAME                               remove a service
  reload                                                   reload HAProxy on the current state
  config [--type json]                                     print the HAProxy configuration (or the state)
  status [--json]                                          services, routes, backend health, last reload
  certs [--json]                                           certificates: files, uploaded and ACME (issuer, expiry, next renewal)

Options:
  --address URL     the proxy's API (default $DFP_ADDRESS or http://localhost:8080)
  --user USER:PASS  credentials when the API has API_USERS (default $DFP_USER)
  --json            print the API's JSON answer as it is
  --help            this text

Parameters are the reconfigure parameters of docs/usage.md in kebab case (--service-path,
--service-domain, --req-mode, --port.1 …); a repeated option is joined with commas.
Exit status: 0 when the proxy answered OK, 1 when it refused or failed (message on stderr),
2 for a usage error.`

class UsageError extends Error {}

interface Parsed {
  command: string
  options: Map<string, string>
}

/** `--name value`, `--name=value`, or `--name` alone (true). */
function parseArgs(argv: string[]): Parsed {
  let command = ''
  const options = new Map<string, string>()
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string
    if (!arg.startsWith('--')) {
      if (command !== '') throw new UsageError(`unexpected argument ${JSON.stringify(arg)}`)
      command = arg
      continue
    }
    const eq = arg.indexOf('=')
    const name = arg.slice(2, eq === -1 ? undefined : eq)
    if (name === '') throw new UsageError(`bad option ${JSON.stringify(arg)}`)
    let value: string
    if (eq !== -1) value = arg.slice(eq + 1)
    else if (i + 1 < argv.length && !(argv[i + 1] as string).startsWith('--')) value = argv[++i] as string
    else value = 'true'
    const previous = options.get(name)
    options.set(name, previous === undefined ? value : `${previous},${value}`)
  }
  return { command, options }
}

/** `service-name` → `serviceName`; dots of indexed parameters stay (`port.1`). */
const camelCase = (name: string) => name.replace(/-([a-z0-9])/g, (_, c: string) => c.toUpperCase())

const globalOptions = new Set(['address', 'user', 'json', 'help'])

async function call(address: string, endpoint: string, params: Record<string, string>, user: string | undefined) {
  const url = new URL(`/v1/docker-flow-proxy/${endpoint}`, address)
  for (const [key, value] of Object.entries(params)) url.searchParams.set(key, value)
  const headers: Record<string, string> = user ? { authorization: `Basic ${Buffer.from(user).toString('base64')}` } : {}
  // A change is answered when it is live: as long as a reload may take.
  const reply = await fetch(url, { headers, signal: AbortSignal.timeout(120_000) })
  return { status: reply.status, type: reply.headers.get('content-type') ?? '', body: await reply.text() }
}

function parseJson(body: string): any {
  try {
    return JSON.parse(body)
  } catch {
    return undefined
  }
}

function describeStatus(report: any): string {
  const lines: string[] = []
  const reload = report.haproxy.lastReload
  lines.push(
    `worker generation ${report.haproxy.workerGeneration}; last reload: ${reload ? `${reload.ok ? 'ok' : `failed (${reload.error})`} at ${reload.at}, ${reload.ms} ms` : 'none since start'}`,
  )
  if (!report.haproxy.statsAvailable) lines.push(`HAProxy statistics unavailable: ${report.haproxy.statsError ?? ''}`)
  for (const service of report.services) {
    lines.push(`${service.serviceName} (${service.source})`)
    for (const route of service.routes) {
      const where = [route.paths.join(','), route.domains.join(','), route.srcPort === null ? '' : `srcPort ${route.srcPort}`].filter((s) => s !== '').join(' ')
      const health = route.backends.map((b: any) => `${b.name} ${b.status} [${b.servers.map((s: any) => `${s.name} ${s.status}`).join(', ')}]`).join('; ')
      lines.push(`  ${route.mode} ${where} → :${route.port}  ${health || 'no backend'}`)
    }
  }
  if (report.services.length === 0) lines.push('no services')
  return lines.join('\n')
}

function describeCerts(answer: any): string {
  const lines: string[] = []
  for (const cert of answer.Certs ?? []) lines.push(`${cert.Name} (${cert.Source}) ${cert.Domains.join(',')} valid to ${cert.ValidTo}${cert.Expired ? ' EXPIRED' : ''}`)
  if ((answer.Certs ?? []).length === 0) lines.push('no certificates')
  for (const acme of answer.Acme ?? []) {
    const next = acme.NextAttempt ? `, next ${acme.State === 'valid' ? 'renewal' : 'attempt'} ${acme.NextAttempt}` : ''
    const issued = acme.Issuer ? `, issued by ${acme.Issuer}, valid to ${acme.ValidTo}` : ''
    const failed = acme.Failures > 0 ? `, ${acme.Failures} failure(s): ${acme.LastError}` : ''
    lines.push(`ACME ${acme.Domains.join(',')} [${acme.Services.join(',')}]: ${acme.State}${issued}${next}${failed}`)
  }
  return lines.join('\n')
}

async function main(argv: string[]): Promise<number> {
  const { command, options } = parseArgs(argv)
  if (options.has('help') || command === '' || command === 'help') {
    process.stdout.write(`${usage}\n`)
    return command === '' && !options.has('help') ? 2 : 0
  }
  const address = options.get('address') ?? process.env.DFP_ADDRESS ?? 'http://localhost:8080'
  const user = options.get('user') ?? process.env.DFP_USER
  const asJson = options.get('json') === 'true'
  const params: Record<string, string> = {}
  for (const [name, value] of options) if (!globalOptions.has(name)) params[camelCase(name)] = value

  const allowed: Record<string, (keys: string[]) => string | undefined> = {
    reconfigure: (keys) => (keys.includes('serviceName') ? undefined : '--service-name is required'),
    remove: (keys) => (keys.includes('serviceName') ? (keys.length > 2 || keys.some((k) => !['serviceName', 'distribute'].includes(k)) ? 'remove takes --service-name (and --distribute)' : undefined) : '--service-name is required'),
    reload: () => undefined,
    config: (keys) => (keys.every((k) => k === 'type') ? undefined : 'config takes --type json only'),
    status: (keys) => (keys.length === 0 ? undefined : 'status takes no parameters'),
    certs: (keys) => (keys.length === 0 ? undefined : 'certs takes no parameters'),
  }
  const check = allowed[command]
  if (!check) throw new UsageError(`unknown command ${JSON.stringify(command)}`)
  const problem = check(Object.keys(params))
  if (problem) throw new UsageError(problem)

  const endpoint = command === 'status' ? 'status' : command
  const reply = await call(address, endpoint, command === 'status' ? { type: 'json' } : params, user)
  const json = parseJson(reply.body)
  if (reply.status >= 300) {
    const message = json && typeof json.Message === 'string' ? json.Message : reply.body.trim()
    process.stderr.write(`dfp: ${command} failed (${reply.status}): ${message}\n`)
    return 1
  }
  if (asJson || (command === 'config' && json !== undefined)) process.stdout.write(`${JSON.stringify(json ?? reply.body, null, 2)}\n`)
  else if (command === 'config') process.stdout.write(reply.body.endsWith('\n') ? reply.body : `${reply.body}\n`)
  else if (command === 'status') process.stdout.write(`${describeStatus(json)}\n`)
  else if (command === 'certs') process.stdout.write(`${describeCerts(json)}\n`)
  else process.stdout.write(`${json?.Message ? json.Message : 'OK'}${json?.ServiceName ? ` (${json.ServiceName})` : ''}\n`)
  return 0
}

try {
  process.exitCode = await main(process.argv.slice(2))
} catch (err) {
  if (err instanceof UsageError) {
    process.stderr.write(`dfp: ${err.message}\n\n${usage}\n`)
    process.exitCode = 2
  } else {
    const cause = err instanceof Error && err.cause instanceof Error ? `: ${err.cause.message}` : ''
    process.stderr.write(`dfp: ${messageOf(err)}${cause}\n`)
    process.exitCode = 1
  }
}

