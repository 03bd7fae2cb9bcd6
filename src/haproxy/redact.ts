/**
 * Passwords in HAProxy configuration text, blanked so the text stays readable: `/config`, the
 * configuration logged with DISPLAY_CONFIG_ON_ERROR and HAProxy's own messages, which quote the
 * lines they complain about.
 */
export const REDACTED = '<redacted>'

const rules: ReadonlyArray<[RegExp, string]> = [
  // userlist entries (configuration.txt 3.4): `user <name> password|insecure-password <secret>`,
  // read by position: a user name is one word without blanks or quotes (haproxy-text.ts), so the
  // third word is the keyword and everything after it the password, whatever the name looks like
  [/^(\s*user\s+\S+\s+(?:insecure-)?password\s+).*$/gm, `$1${REDACTED}`],
  // the same words quoted in HAProxy's messages, outside a whole line: the keyword as a word of its
  // own (not the end of a name such as `my-password`) and the word after it
  [/((?:^|[\s'"])(?:insecure-)?password\s+)(?!<redacted>|(?:insecure-)?password\b)[^\s'"]+/g, `$1${REDACTED}`],
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
