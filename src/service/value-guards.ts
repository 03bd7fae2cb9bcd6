/**
 * Guards on parameter values that no per-parameter schema can express: what a value could make
 * HAProxy do once it is spliced into haproxy.cfg, and how much a request may carry.
 *
 * dfp refuses rather than neutralises: an escaped value would reach HAProxy as something the
 * user did not write, and a silent rewrite hides the problem from the one who sent it. Every
 * refusal is a 400 naming the parameter and the rule (docs/guarantees.md, docs/usage.md).
 */

/** Most parameters one request (or one saved entry) may carry. */
export const MAX_PARAMETERS = 400
/** Longest value of any parameter, known or not (serviceCert aside: a PEM chain, never saved with the service). */
export const MAX_VALUE_LENGTH = 4096
/** Most characters (names and values together) stored for one service. */
export const MAX_STORED_CHARACTERS = 64 * 1024
/** Parameters whose values are not stored with the service and may be longer. */
const unbounded = new Set(['serviceCert'])

interface GuardViolation {
  parameter: string
  problem: string
}

/**
 * The bounds of one request: the number of parameters, the size of each, the size of all of
 * them together (that is what the state file keeps for the service).
 */
function checkBounds(entries: ReadonlyArray<readonly [string, string]>): GuardViolation | undefined {
  if (entries.length > MAX_PARAMETERS) {
    return { parameter: 'request', problem: `carries ${entries.length} parameters; at most ${MAX_PARAMETERS} are accepted (limit MAX_PARAMETERS)` }
  }
  let stored = 0
  for (const [name, value] of entries) {
    if (unbounded.has(name)) continue
    if (name.length > 200) return { parameter: `${name.slice(0, 40)}…`, problem: 'parameter names must be at most 200 characters' }
    if (value.length > MAX_VALUE_LENGTH) return { parameter: name, problem: `must be at most ${MAX_VALUE_LENGTH} characters (limit MAX_VALUE_LENGTH)` }
    stored += name.length + value.length
  }
  if (stored > MAX_STORED_CHARACTERS) {
    return { parameter: 'request', problem: `its parameters add up to ${stored} characters; at most ${MAX_STORED_CHARACTERS} are stored per service (limit MAX_STORED_CHARACTERS)` }
  }
  return undefined
}

// Each rule names what HAProxy would do with the value. Sample fetches and converters are
// matched up to their opening parenthesis: `env(` is the fetch, `map_str(` a converter
// (configuration.txt 7.3).
const anywhere: ReadonlyArray<{ pattern: RegExp; problem: string }> = [
  { pattern: /\benv\s*\(/i, problem: 'must not use env(): HAProxy would read its environment' },
  { pattern: /\b(map(_\w+)?|set-map|del-map|add-acl|del-acl)\s*\(/i, problem: 'must not use map files or change maps and ACLs: HAProxy would read or change files of the proxy' },
  { pattern: /\b(unix|abns|sockpair|fd)@/i, problem: 'must not name a socket address (unix@, abns@, sockpair@, fd@)' },
]

// HAProxy expands `$NAME` and `${NAME}` inside double quotes when it parses the file
// (configuration.txt 2.3), so a quoted value could read any environment variable.
const quoted = /"/
const variable = /\$(\{|[A-Za-z_])/

// Keywords that make HAProxy read a file (or load code) when they are words of a line:
// `http-request return … file`, `lf-file`, `errorfile(s)`, `errorloc*`, `lua-load`, server and
// bind certificates, `acl … -f <file>` (configuration.txt 4.2, 5.1, 5.2, 7.1).
const fileKeywords = new Set([
  'file',
  'lf-file',
  'errorfile',
  'errorfiles',
  'errorloc',
  'errorloc302',
  'errorloc303',
  'lua-load',
  'lua-load-per-thread',
  'lua-prepend-path',
  'crt',
  'crt-list',
  'ca-file',
  'crl-file',
  'issuers-chain-path',
  'server-state-file',
  'load-server-state-from-file',
  '-f',
])


/**
 * Parameters with a grammar of their own that are written as data (src/haproxy-text.ts:
 * `configWord`, `logFormatWord`) or, for backendExtra, read as HAProxy reads them and checked
 * word by word (backend-extra.ts). The string rules below would only refuse harmless data there.
 */
const dataParameters = new Set([
  'addReqHeader', 'setReqHeader', 'addResHeader', 'setResHeader', 'delReqHeader', 'delResHeader', 'addHeader', 'setHeader',
  'users', 'servicePath', 'servicePathExclude', 'serviceDomain', 'redirectFromDomain', 'userAgent', 'serviceHeader', 'backendExtra',
])

/**
 * Why `value` (of `parameter`) is refused, or undefined when it may be spliced into the
 * configuration. Only values with a blank are free text; a single word (a name, a port, a path)
 * cannot form a directive of its own, so the keyword rules apply to free text only.
 */
export function checkValue(parameter: string, value: string): string | undefined {
  if (dataParameters.has(parameter.replace(/\.\d+$/, ''))) return undefined
  for (const rule of anywhere) if (rule.pattern.test(value)) return rule.problem
  if (quoted.test(value) && variable.test(value)) return 'must not combine a double quote with "$NAME": HAProxy would put an environment variable there'
  const words = value.trim().split(/[\s(),]+/).filter((w) => w !== '')
  if (/\s/.test(value.trim())) {
    const keyword = words.find((w) => fileKeywords.has(w.toLowerCase()))
    if (keyword) return `must not use "${keyword}": HAProxy would read a file`
  }
  return undefined
}

/** Every guard on the parameters of one request or saved entry: the first violation, if any. */
export function checkParameters(entries: ReadonlyArray<readonly [string, string]>): GuardViolation | undefined {
  const bounds = checkBounds(entries)
  if (bounds) return bounds
  for (const [parameter, value] of entries) {
    if (unbounded.has(parameter)) continue
    const problem = checkValue(parameter, value)
    if (problem) return { parameter, problem }
  }
  return undefined
}
