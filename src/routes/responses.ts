import { withoutPasswords } from '../service/public.js'
import type { Service } from '../service/types.js'

/** DFP's answer: `Status`, `Message`, `ServiceName`, then the service's fields (errors: `DfpError.body()`). */
export interface DfpResponse {
  Status: 'OK' | 'NOK'
  Message: string
  ServiceName?: string
  [field: string]: unknown
}

const pascal = (key: string) => key.charAt(0).toUpperCase() + key.slice(1)

/**
 * The service flattened into the response as the original did, with its Go field names
 * (`AclName`, `ServiceDest: [{Port, ServicePath, …}]`).
 */
export function serviceFields(service: Service): Record<string, unknown> {
  const { destinations, ...rest } = withoutPasswords(service)
  const fields: Record<string, unknown> = {}
  for (const [key, value] of Object.entries(rest)) fields[pascal(key)] = value
  fields.ServiceDest = destinations.map((dest) => Object.fromEntries(Object.entries(dest).map(([key, value]) => [pascal(key), value])))
  return fields
}

export const ok = (message = '', serviceName?: string, extra: Record<string, unknown> = {}): DfpResponse => ({
  Status: 'OK',
  Message: message,
  ...(serviceName === undefined ? {} : { ServiceName: serviceName }),
  ...extra,
})
