import { configWord, parseConfigLine } from '../haproxy-text.js'

/**
 * `backendExtra`: a line of the user's own in each of the service's backends, read the way
 * HAProxy reads it (src/haproxy-text.ts) and checked word by word against an allow-list, so that
 * no spelling of it (quotes, escapes, `${}`) reads a file, the environment, another service's
 * backend, userlist, table or map, or opens a section (docs/usage.md "backendExtra").
 *
 * The line is written back from the words read (`backendExtraLine`), each through `configWord`:
 * HAProxy reads exactly the words that were checked.
 */

/** Directives a backend line may start with (configuration.txt 4.2), each a concern of the backend itself. */
const DIRECTIVES = new Set([
  'acl',
  'balance',
  'compression',
  'cookie',
  'fullconn',
  'hash-type',
  'http-after-response',
  'http-check',
  'http-request',
  'http-response',
  'http-reuse',
  'no',
  'option',
  'retries',
  'retry-on',
  'timeout',
])

/**
 * `option`/`no option` names of a backend (configuration.txt 4.2), and the logging and keep-alive ones of
 * a listen section (a TCP group's backendExtra goes into its `listen`); `external-check` (runs a program) is not one.
 */
const OPTIONS = new Set([
  'abortonclose', 'allbackups', 'checkcache', 'forwardfor', 'http-buffer-request', 'http-keep-alive', 'http-no-delay',
  'http-pretend-keepalive', 'http-server-close', 'httpchk', 'httpclose', 'log-health-checks', 'nolinger', 'originalto',
  'persist', 'prefer-last-server', 'redispatch', 'splice-auto', 'splice-request', 'splice-response', 'tcp-check',
  'tcp-smart-connect', 'tcpka', 'srvtcpka', 'ssl-hello-chk', 'mysql-check', 'pgsql-check', 'redis-check', 'smtpchk',
  'ldap-check', 'independent-streams', 'disable-h2-upgrade', 'h1-case-adjust-bogus-server', 'http-ignore-probes', 'http-use-proxy-header',
  'tcplog', 'httplog', 'dontlognull', 'clitcpka',
])

/** Keywords that open a section (configuration.txt 2.5, 3, 4, 8–12): named in the refusal. */
const SECTIONS = new Set(['global', 'defaults', 'frontend', 'backend', 'listen', 'resolvers', 'userlist', 'peers', 'mailers', 'program', 'cache', 'ring', 'http-errors', 'log-forward', 'dynamic-update', 'fcgi-app', 'namespace_list', 'traces'])

/** `http-request`/`http-response`/`http-after-response` actions that change the message or answer it. */
const ACTIONS = new Set([
  'add-header',
  'set-header',
  'del-header',
  'replace-header',
  'replace-value',
  'set-path',
  'set-pathq',
  'set-query',
  'set-uri',
  'set-method',
  'replace-path',
  'replace-pathq',
  'replace-uri',
  'set-status',
  'allow',
  'deny',
  'tarpit',
  'redirect',
  'return',
  'auth',
  'set-log-level',
  'set-nice',
  'set-tos',
  'early-hint',
  'normalize-uri',
  'disable-l7-retry',
  'set-timeout',
  'wait-for-body',
  'set-var',
  'set-var-fmt',
  'unset-var',
])

/**
 * Names that may be followed by `(`: the variable actions, and sample fetches and converters
 * (configuration.txt 7.3) whose arguments name nothing outside the request (a header, a cookie,
 * a variable, a number). Absent on purpose: env, map*, the be_/srv_/nbsrv/queue/connslots
 * fetches naming a backend or server, table_/sc_/src_ naming a stick table, http_auth naming a
 * userlist, lua.*.
 */
const CALLS = new Set([
  'set-var', 'set-var-fmt', 'unset-var',
  'hdr', 'req.hdr', 'res.hdr', 'req.fhdr', 'res.fhdr', 'hdr_cnt', 'req.hdr_cnt', 'res.hdr_cnt', 'hdr_val', 'req.hdr_val', 'res.hdr_val',
  'hdr_beg', 'hdr_end', 'hdr_sub', 'hdr_dom', 'hdr_reg', 'hdr_dir', 'hdr_len', 'hdr_ip', 'hdr_str',
  'cook', 'req.cook', 'res.cook', 'scook', 'cook_val', 'req.cook_cnt', 'url_param', 'urlp', 'urlp_val', 'var',
  'capture.req.hdr', 'capture.res.hdr', 'int', 'str', 'bool', 'ipv4', 'ipv6', 'meth',
  'field', 'word', 'regsub', 'bytes', 'lower', 'upper', 'concat', 'add', 'sub', 'mul', 'div', 'mod', 'and', 'or', 'xor',
  'ipmask', 'sha2', 'ltrim', 'rtrim', 'json', 'url_dec', 'strcmp', 'base64', 'hex', 'length', 'djb2', 'crc32', 'wt6',
  'xxh32', 'xxh64', 'sdbm', 'digest', 'json_query', 'be2dec', 'be2hex', 'htonl', 'ub64enc', 'ub64dec',
])

/** Words that make HAProxy read a file or run code wherever they appear (configuration.txt 4.2, 7.1). */
const FORBIDDEN_WORDS = new Set(['file', 'lf-file', 'errorfile', 'errorfiles', 'errorloc', 'errorloc302', 'errorloc303', '-f', '-M', 'table', 'use-service'])

/** Why a word is refused, or undefined. */
function wordProblem(word: string): string | undefined {
  if (/[\x00-\x1f\x7f]/.test(word)) return 'must not contain control characters (\\r, \\n, \\x00 …)'
  if (FORBIDDEN_WORDS.has(word)) return `must not use "${word}": it reads a file, runs code or names another section`
  if (/(^|[^A-Za-z0-9_.-])lua\./.test(word) || word.startsWith('lua.')) return 'must not call Lua'
  for (const [, name] of word.matchAll(/([A-Za-z_][A-Za-z0-9_.-]*)\(/g)) {
    if (!CALLS.has(name as string)) return `must not use ${name}(): only fetches and converters that read the request are allowed (docs/usage.md)`
  }
  return undefined
}

/** The words of a backendExtra line as HAProxy reads them, or the problem. */
export function backendExtraWords(line: string): { words: string[] } | { problem: string } {
  const parsed = parseConfigLine(line)
  if (parsed.error !== undefined) return { problem: `HAProxy could not read it: ${parsed.error}` }
  if (parsed.readsEnvironment) return { problem: 'must not use "$NAME" inside double quotes: HAProxy would read its environment' }
  const { words } = parsed
  if (words.length === 0) return { words }
  const [directive = '', action = ''] = words
  if (SECTIONS.has(directive.toLowerCase())) return { problem: `must stay inside its backend: "${directive}" would open a new section` }
  if (!DIRECTIVES.has(directive)) return { problem: `"${directive}" is not a directive backendExtra may use (${[...DIRECTIVES].join(', ')})` }
  if (directive === 'no' && action !== 'option') return { problem: '"no" may only precede "option"' }
  const option = directive === 'option' ? action : directive === 'no' ? (words[2] ?? '') : undefined
  if (option !== undefined && !OPTIONS.has(option)) return { problem: `"option ${option}" is not an option backendExtra may use` }
  if (directive.startsWith('http-') && directive !== 'http-check' && directive !== 'http-reuse') {
    const name = action.replace(/\(.*$/, '')
    if (!ACTIONS.has(name)) return { problem: `"${directive} ${name}" is not an action backendExtra may use` }
  }
  for (const word of words) {
    const problem = wordProblem(word)
    if (problem) return { problem }
  }
  return { words }
}

/** The line written into the backend: the checked words, each encoded by `configWord`. */
export const backendExtraLine = (words: readonly string[]) => words.map(configWord).join(' ')
