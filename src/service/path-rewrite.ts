/**
 * A path rewrite (`reqPathSearch`/`reqPathReplace`, `reqPathSearchReplace`) as an
 * `http-request replace-path` rule. The original wrote `set-path %[path,regsub(<search>,<replace>)]`,
 * whose converter arguments cannot hold a regex with a capture group (`^/plus/([a-z]+)/`): HAProxy
 * refuses the parenthesis. replace-path takes the regex and the replacement as words of their own.
 * It replaces the whole path when the regex matches, so the search is wrapped to keep what comes
 * before and after its first match, as regsub did: `^(.*?)(?:<search>)(.*)$` → `\1<replace>\N`,
 * the replacement's own references shifted by one. Both words are single-quoted (nothing inside
 * is interpreted); the replacement is a log-format string, where `%` is written `%%`.
 */
export function pathRewriteRule(search: string, replace: string): string {
  const groups = captureGroups(search)
  const shifted = replace.replace(/\\(\d)/g, (_, digit: string) => `\\${Number(digit) + 1}`).replaceAll('%', '%%')
  return `http-request replace-path '^(.*?)(?:${search})(.*)$' '\\1${shifted}\\${groups + 2}'`
}

/** HAProxy's replacements reach `\9`: two of them are the wrapper's. */
export const MAX_CAPTURE_GROUPS = 7

/**
 * Why `search`/`replace` cannot be a rewrite, or undefined when they can: a single quote (the
 * words are single-quoted), more than MAX_CAPTURE_GROUPS groups, a reference to a group the search
 * does not have.
 */
export function rewriteProblem(search: string, replace: string): string | undefined {
  const problem = searchProblem(search) ?? replaceProblem(replace)
  if (problem) return problem
  const groups = captureGroups(search)
  const highest = Math.max(0, ...[...replace.matchAll(/\\(\d)/g)].map((m) => Number(m[1])))
  if (highest > groups) return `the replacement refers to \\${highest}, but the search has ${groups} capture group${groups === 1 ? '' : 's'}`
  return undefined
}

/** Why `search` alone cannot be a rewrite's search (see rewriteProblem). */
export function searchProblem(search: string): string | undefined {
  if (search.includes("'")) return 'must not contain a single quote (\')'
  if (captureGroups(search) > MAX_CAPTURE_GROUPS) return `the search may have at most ${MAX_CAPTURE_GROUPS} capture groups`
  return undefined
}

/** Why `replace` alone cannot be a rewrite's replacement (see rewriteProblem). */
export function replaceProblem(replace: string): string | undefined {
  return replace.includes("'") ? 'must not contain a single quote (\')' : undefined
}

/**
 * Capturing groups in a PCRE pattern: `(` not escaped, not inside a character class, not
 * followed by `?` (non-capturing and look-around groups; named groups `(?<n>…)`/`(?P<n>…)` count).
 */
export function captureGroups(pattern: string): number {
  let count = 0
  let inClass = false
  for (let i = 0; i < pattern.length; i++) {
    const char = pattern[i]
    if (char === '\\') {
      i++
      continue
    }
    if (inClass) {
      if (char === ']') inClass = false
      continue
    }
    if (char === '[') {
      inClass = true
      // `[]…]` and `[^]…]`: a `]` first in the class is a literal.
      if (pattern[i + 1] === '^') i++
      if (pattern[i + 1] === ']') i++
      continue
    }
    if (char !== '(') continue
    if (pattern[i + 1] !== '?') count++
    else if (/^\?(P?<[A-Za-z_])/.test(pattern.slice(i + 1, i + 5))) count++
  }
  return count
}
