/**
 * Makes every string inside `value` flat, in place, and returns `value`. Strings built by
 * concatenation (template output, template literals, `+`) are kept by V8 as trees of their
 * pieces until a character of them is read; a long-lived object full of such trees holds
 * several times the memory of its text. Measured at 10 000 services: the parsed services and
 * their rendered backends held 45 MB of heap as trees, 13 MB flat. Reading one character
 * flattens a string (V8 replaces the tree by the flat text).
 */
export function flatStrings<T>(value: T): T {
  flatten(value, 0)
  return value
}

function flatten(value: unknown, depth: number): void {
  if (depth > 16 || value === null || typeof value !== 'object') return
  for (const item of Array.isArray(value) ? value : Object.values(value)) {
    if (typeof item === 'string') item.charCodeAt(0)
    else flatten(item, depth + 1)
  }
}
