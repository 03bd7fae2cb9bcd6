/**
 * HAProxy 2.6's line grammar, as one model: how a configuration line becomes words (parse_line in
 * src/tools.c, configuration.txt 2.2–2.3), and the one encoder through which every value dfp
 * writes into haproxy.cfg passes (`configWord`, `logFormatWord`). The bottom layer: it imports
 * nothing of the project.
 *
 * What parse_line does with a configuration line (the options the configuration reader passes:
 * double quotes, single quotes, backslashes, `#` comments, environment variables):
 * - blanks (space, tab) outside quotes separate words; `#` outside quotes starts a comment;
 * - `"…"`: blanks and `#` are data; backslash escapes are processed; `$NAME`, `${NAME}` (and
 *   `${NAME[*]}`, `${NAME-default}`) are replaced by the environment variable;
 * - `'…'`: everything up to the next `'` is data, backslash included (a `'` cannot be escaped
 *   inside, it is written `'\''`);
 * - outside quotes a backslash escapes the next character: `\\`, `\ `, `\#`, `\'`, `\"`,
 *   `\r`, `\n`, `\t`, `\xHH` become one byte; another character (`\$` too) keeps the backslash, and
 *   so does a backslash at the end of the line (measured on 2.6: test/faults/values-line-model.test.ts).
 */

export interface ParsedLine {
  /** The words, quotes removed and escapes resolved, as HAProxy reads them. */
  words: string[]
  /** A `$NAME`/`${NAME}` inside double quotes: HAProxy would put an environment variable there. */
  readsEnvironment: boolean
  /** Why HAProxy would refuse the line (an unterminated quote, a bad `\x`), if it would. */
  error?: string
}

const isBlank = (c: string | undefined) => c === ' ' || c === '\t'
const hex = /^[0-9A-Fa-f]{2}$/

/** The words HAProxy 2.6 reads from one configuration line (without its end of line). */
export function parseConfigLine(line: string): ParsedLine {
  const words: string[] = []
  let word: string | undefined
  let squote = false
  let dquote = false
  let readsEnvironment = false
  const add = (text: string) => {
    word = (word ?? '') + text
  }
  for (let i = 0; i < line.length; i++) {
    const c = line[i] as string
    if (squote) {
      if (c === "'") squote = false
      else add(c)
      continue
    }
    if (c === "'" && !dquote) {
      squote = true
      add('')
      continue
    }
    if (c === '"') {
      dquote = !dquote
      add('')
      continue
    }
    if (c === '\\') {
      const next = line[i + 1]
      // a backslash at the end of the line escapes nothing and stays (measured on 2.6)
      if (next === undefined) {
        add('\\')
        continue
      }
      if (next === 'x') {
        const digits = line.slice(i + 2, i + 4)
        if (!hex.test(digits)) return { words, readsEnvironment, error: `"\\x${digits}" is not a hexadecimal escape` }
        add(String.fromCharCode(parseInt(digits, 16)))
        i += 3
        continue
      }
      const escaped: Record<string, string> = { r: '\r', n: '\n', t: '\t', '\\': '\\', ' ': ' ', '#': '#', "'": "'", '"': '"' }
      const byte = escaped[next]
      if (byte === undefined) add('\\')
      else {
        add(byte)
        i++
      }
      continue
    }
    if (dquote && c === '$' && /[A-Za-z_{]/.test(line[i + 1] ?? '')) {
      // `$NAME` or `${NAME…}`: replaced by the variable (its value is unknown here).
      readsEnvironment = true
      const braced = line[i + 1] === '{'
      const end = braced ? line.indexOf('}', i) : i + 1 + (/^[A-Za-z0-9_]*/.exec(line.slice(i + 1))?.[0].length ?? 0) - 1
      add(`\${env}`)
      i = braced ? (end === -1 ? line.length : end) : end
      continue
    }
    if (!dquote && c === '#') break
    if (!dquote && isBlank(c)) {
      if (word !== undefined) words.push(word)
      word = undefined
      continue
    }
    add(c)
  }
  if (squote || dquote) return { words, readsEnvironment, error: 'a quote is not closed' }
  if (word !== undefined) words.push(word)
  return { words, readsEnvironment }
}

// Bytes that mean nothing to parse_line outside quotes, nor to the argument parsers that read
// words again (ACL patterns, sample arguments): a word of only these is written as it is.
const plain = /^[A-Za-z0-9._\-/:@+=,~*%()]+$/
// A configuration line cannot hold these: the reader ends the line at LF, and HAProxy's words are
// C strings (a NUL would end the word). Each grammar refuses them before a value gets here.
const unwritable = /[\r\n\x00]/

/**
 * THE encoder of a value into one configuration word that parse_line reads back as exactly the
 * same bytes: plain words as they are, others single-quoted (nothing is interpreted inside;
 * a `'` is written `'\''`). Throws on CR, LF or NUL: no word can hold them, and each parameter's
 * grammar refuses them with a 400 first.
 */
export function configWord(value: string): string {
  if (unwritable.test(value)) throw new Error('a configuration word cannot hold CR, LF or NUL')
  if (value !== '' && plain.test(value)) return value
  return `'${value.replaceAll("'", `'\\''`)}'`
}

/**
 * A value as a log-format string that yields exactly its bytes (header values, redirect
 * targets): `%` starts a sample expression or variable there and is written `%%`
 * (configuration.txt 8.2.4). Log-format merges runs of blanks into one, so the grammar of such a
 * value (`logFormatProblem`) refuses leading, trailing and repeated blanks and tabs.
 */
export const logFormatWord = (value: string) => configWord(value.replaceAll('%', '%%'))

/** Why a value cannot be a literal log-format string, or undefined. */
export function logFormatProblem(value: string): string | undefined {
  if (/[\x00-\x1f\x7f]/.test(value)) return 'must not contain control characters (CR, LF, NUL, tab …)'
  if (/^ | $/.test(value)) return 'must not start or end with a blank'
  if (/ {2}/.test(value)) return 'must not contain two blanks in a row (HAProxy would merge them)'
  return undefined
}

/** ACL patterns after their fetch: `--` first when one starts with `-`, so none is read as a flag (`-f <file>`, configuration.txt 7.1). */
export const aclPatterns = (patterns: readonly string[]) => `${patterns.some((p) => p.startsWith('-')) ? ' --' : ''}${patterns.map((p) => ` ${configWord(p)}`).join('')}`

// RFC 9110 §5.6.2: token = 1*tchar.
const token = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/

/** Why `name` is not a header field name (RFC 9110 §5.1: a token), or undefined. */
export const headerNameProblem = (name: string) => (token.test(name) ? undefined : `header name ${JSON.stringify(name)} must be an RFC 9110 token (letters, digits and !#$%&'*+-.^_\`|~)`)

/** Why `value` cannot be a header field value as data (RFC 9110 §5.5 and log-format), or undefined. */
export const headerValueProblem = (value: string) => (value === '' ? 'the header value is empty' : logFormatProblem(value))

/**
 * A userlist user name (configuration.txt 3.4): what a client can send in Basic credentials and
 * HAProxy compares byte for byte. No blank, quote, backslash, `#`, `$` (the configuration's
 * syntax), no `:` (it ends the name in Basic credentials), no `,` (separates entries), printable ASCII.
 */
export const userNameProblem = (name: string) => (/^[\x21-\x7e]+$/.test(name) && !/[#$,:'"\\]/.test(name) ? undefined : 'must be printable ASCII without blanks, quotes, backslash, "#", "$", ":" or ","')

/** A password (or crypt(3) hash): any characters but control characters; written single-quoted. */
export const passwordProblem = (password: string) => (/[\x00-\x1f\x7f]/.test(password) ? 'must not contain control characters' : undefined)

/**
 * A path as HAProxy sees it: clients send a path in ASCII, other characters percent-encoded
 * (RFC 3986 §2.1), and the `path` fetch returns it undecoded. A non-ASCII character is
 * therefore written as its UTF-8 bytes, percent-encoded in upper case (`/ü` → `/%C3%BC`).
 */
export const pathAsSent = (path: string) => path.replace(/[^\x00-\x7f]+/gu, (run) => encodeURIComponent(run))

/**
 * A key of a route map and of the Runtime API commands that change it (`add map`/`del map`):
 * one word of a map file (no blank, no leading `#`) and of a CLI line, which `;` would end, a
 * backslash or quote would escape, and `<<` at its end would turn into a payload (management.txt 9.3).
 */
export const runtimeWordProblem = (key: string) => (/^[\x21-\x7e]+$/.test(key) && !/[;#\\'"<>]/.test(key) ? undefined : 'cannot be a word of a map file or Runtime API command')
