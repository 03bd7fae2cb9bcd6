import { z } from 'zod'
import { COMPRESSION_ALGOS } from '../field-values.js'

/** The zod schemas of single reconfigure parameters (booleans: `booleanSchema` of field-values.ts). */

export const serviceNameSchema = z
  .string()
  .max(200, 'must be at most 200 characters')
  .regex(/^[A-Za-z0-9][A-Za-z0-9_.-]*$/, 'must start with a letter or digit and contain only letters, digits, ".", "_" and "-"')
export const portSchema = z
  .string()
  .regex(/^\d{1,5}$/, 'must be a port number')
  .refine((v) => +v >= 1 && +v <= 65535, 'must be between 1 and 65535')
  .transform((v) => String(Number(v)))
export const reqModeSchema = z.string().transform((v) => v.toLowerCase()).pipe(z.enum(['http', 'tcp', 'sni'], 'must be http, tcp or sni'))
export const redirectCodeSchema = z.enum(['301', '302', '303', '307', '308'], 'must be 301, 302, 303, 307 or 308')
export const compressionAlgoSchema = z
  .string()
  .transform((v) => v.split(/[\s,]+/).filter((a) => a !== ''))
  .pipe(z.array(z.enum(COMPRESSION_ALGOS, 'must be identity, gzip, deflate or raw-deflate')).min(1, 'must name an algorithm'))
  .transform((algos) => algos.join(' '))
// A MIME type (RFC 9110 §8.3.1: type "/" subtype, tokens).
export const mimeTypes = z
  .string()
  .transform((v) => v.split(/[\s,]+/).filter((t) => t !== ''))
  .pipe(z.array(z.string().regex(/^[A-Za-z0-9!#$%&'*+.^_`|~-]+\/[A-Za-z0-9!#$%&'*+.^_`|~-]+$/, 'must be MIME types such as text/html')).min(1, 'must name a MIME type'))
  .transform((types) => types.join(' '))
export const groupNameSchema = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.-]*$/, 'must start with a letter or digit and contain only letters, digits, ".", "_" and "-"')
export const balanceSchema = z.string().regex(/^[a-z][a-z_-]*(\([^\s()]*\))?$/, 'must be an HAProxy balance algorithm such as roundrobin, leastconn or source')
export const connectionModeSchema = z.enum(['http-keep-alive', 'http-server-close', 'httpclose'], 'must be http-keep-alive, http-server-close or httpclose')
// HAProxy's server weight (configuration.txt 5.2 "weight": 0 to 256).
export const weightSchema = z
  .string()
  .regex(/^\d{1,3}$/, 'must be a whole number from 0 to 256')
  .transform(Number)
  .pipe(z.number().max(256, 'must be a whole number from 0 to 256'))
