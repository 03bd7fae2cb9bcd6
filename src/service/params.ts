import { z } from 'zod'
import { acmeRequestOf } from './acme-request.js'
import { errors } from '../errors.js'
import { compact } from '../compact.js'
import { renderCustomTemplate } from './custom-templates.js'
import { isSet, optionalOf, type ParamSource, readParam, readParams, refusal, text } from './param-fields.js'
import { serviceNameSchema } from './param-schemas.js'
import { type ParseOptions, serviceInput, serviceSchema } from './service-schema.js'
import type { Service, ServiceChange } from './types.js'

/** The checks of inventory §3.5, in its order and with its messages and status codes. */
function checkRoutable(service: Service): void {
  for (const dest of service.destinations) {
    if (dest.reqMode === 'http') {
      if (dest.servicePath.length === 0 && dest.serviceDomain.length === 0) throw errors.httpWithoutPathOrDomain(service.serviceName)
    } else if (dest.srcPort === undefined || dest.port === '') {
      throw errors.tcpWithoutPorts(service.serviceName)
    }
    // A destination may serve HTTPS requests only (httpsPort without port).
    if (dest.port === '' && dest.httpsPort === undefined) throw errors.portMissing(service.serviceName)
  }
}

/** Checks between parameters that the schemas of each cannot see. */
function checkCombinations(service: Service): void {
  const invalid = (name: string, problem: string) => errors.invalidParameter(name, problem, service.serviceName)
  for (const dest of service.destinations) {
    const suffix = dest.index > 0 ? `.${dest.index}` : ''
    // The original wrote a truncated frontend block here (its D16).
    if (dest.redirectFromDomain.length > 0 && dest.serviceDomain.length === 0) {
      throw invalid(`redirectFromDomain${suffix}`, 'needs serviceDomain: its first domain is where the redirect goes')
    }
    if (dest.reqMode !== 'http') {
      if (dest.httpsPort !== undefined) throw invalid(`httpsPort${suffix}`, 'applies to reqMode http only')
      if (dest.serviceHeader.length > 0) throw invalid(`serviceHeader${suffix}`, 'applies to reqMode http only')
      if (dest.userAgent.length > 0) throw invalid(`userAgent${suffix}`, 'applies to reqMode http only')
      if (dest.redirectFromDomain.length > 0) throw invalid(`redirectFromDomain${suffix}`, 'applies to reqMode http only')
    }
    if (dest.reqMode === 'sni' && dest.servicePath.length === 0) throw invalid(`servicePath${suffix}`, 'reqMode sni needs the server names to match (servicePath or serviceDomain)')
    if (dest.serviceGroup !== undefined && dest.reqMode !== 'tcp') throw invalid(`serviceGroup${suffix}`, 'applies to reqMode tcp only')
  }
  if (service.compressionType !== undefined && service.compressionAlgo === undefined) {
    throw invalid('compressionType', 'needs compressionAlgo')
  }
}

/** Parses parameters already read with `readParams`. */
function parseValues(values: Record<string, string>, options: ParseOptions): Service {
  if (!isSet(values, 'serviceName')) throw errors.serviceNameMissing()
  const { fields, paramOf } = serviceInput(values)
  const parsed = serviceSchema(options).safeParse(fields)
  if (!parsed.success) {
    // Until serviceName is known to be valid, refusals name no service.
    const about = parsed.error.issues[0]?.path[0] === 'serviceName' ? undefined : values.serviceName
    throw refusal(parsed.error, paramOf, about)
  }
  const service: Service = parsed.data
  checkRoutable(service)
  checkCombinations(service)
  // Custom templates see the service as parsed so far; their output replaces generated text.
  const custom: Partial<Pick<Service, 'customFrontend' | 'customBackend'>> = {}
  for (const [name, field] of [['templateFePath', 'customFrontend'], ['templateBePath', 'customBackend']] as const) {
    const path = readParam(text, values, name, service.serviceName)
    if (path === '') continue
    const rendered = renderCustomTemplate(path, options.templatesDir, service)
    if (!rendered.ok) throw errors.invalidParameter(name, rendered.problem, service.serviceName)
    custom[field] = rendered.text
  }
  return { ...service, ...custom }
}

/**
 * Turns a flat parameter map into a validated Service. Unknown parameters are ignored.
 * Throws a DfpError (400/409) naming the parameter and the problem.
 */
export function parseService(source: ParamSource, options: ParseOptions): Service {
  return parseValues(readParams(source), options)
}

/**
 * The service as plain data, as it is kept for as long as it lives: the schema's output holds a
 * key for every optional field, `undefined` when not given, and its objects are built field by
 * field; a JSON copy has only the fields given, in objects V8 lays out compactly (measured: 1 100
 * bytes a service against 1 400). A service is plain JSON data by construction (strings, numbers,
 * booleans, arrays and objects of them), so the copy reads the same.
 */
const plainCopy = (service: Service): Service => JSON.parse(JSON.stringify(service)) as Service

// Built once: a zod schema costs more to build than to run.
const serviceNameParam = text.pipe(serviceNameSchema)
const replicasParam = optionalOf(z.string().regex(/^\d+$/, 'must be a whole number'))

/** Parameters that steer a request rather than describe the service; they are not saved. */
const requestOnly = new Set(['distribute', 'serviceCert'])

/**
 * A reconfigure request as a change to the state: `replicas=0` removes the service (how the
 * listener reports a service scaled to zero), anything else defines it. The parameters are kept
 * with the service so the saved state can be parsed again the same way.
 */
export function parseChange(source: ParamSource, options: ParseOptions): ServiceChange {
  const values = readParams(source)
  if (!isSet(values, 'serviceName')) throw errors.serviceNameMissing()
  const serviceName = readParam(serviceNameParam, values, 'serviceName')
  const replicas = readParam(replicasParam, values, 'replicas', serviceName)
  if (replicas !== undefined && Number(replicas) === 0) return { kind: 'remove', serviceName }
  const saved = Object.fromEntries(Object.entries(values).filter(([key]) => !requestOnly.has(key)))
  const service = parseValues(values, options)
  // letsencrypt.host / letsencrypt.email are read by src/acme from the saved parameters; a value
  // ACME could not use is refused here, naming the parameter.
  acmeRequestOf(serviceName, saved, service.destinations.flatMap((d) => d.serviceDomain), '')
  return compact({ kind: 'put', service: plainCopy(service), params: saved })
}
