/**
 * Passwords in HAProxy configuration text, blanked so the text stays readable: `/config`, the
 * configuration logged with DISPLAY_CONFIG_ON_ERROR and HAProxy's own messages, which quote the
 * lines they complain about.
 */
export const REDACTED = '<redacted>'

const rules: ReadonlyArray<[RegExp, string]> = [
  // userlist entries (configuration.txt 3.4): `user <name> password|insecure-password <secret>`
  [/(\b(?:insecure-)?password\s+)\S+/g, `$1${REDACTED}`],
  // `stats auth <user>:<password>` (configuration.txt 4.2)
  [/(\bstats\s+auth\s+[^\s:]*:)\S+/g, `$1${REDACTED}`],
  // header rules carrying credentials: `http-request set-header Authorization Basic …`
  [/(\b(?:add|set)-header\s+(?:proxy-)?authorization\s+).+$/gim, `$1${REDACTED}`],
]

/** `text` with every password, password hash and credential header value replaced. */
export function redactConfig(text: string): string {
  let out = text
  for (const [pattern, replacement] of rules) out = out.replace(pattern, replacement)
  return out
}
