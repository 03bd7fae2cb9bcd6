import { passwordProblem, userNameProblem } from '../haproxy-text.js'

/** A user of an HAProxy userlist; `encrypted`: the password is a crypt(3) hash. */
export interface User {
  name: string
  password: string
  encrypted: boolean
}

/**
 * The entries of a `user:password` list (USERS, `users`, API_USERS): split on commas and
 * newlines, trimmed, empty ones dropped, each split at its first `:` (no `:`: the whole entry
 * is the name, the password is empty).
 */
export function credentialEntries(text: string): Array<{ entry: string; name: string; password: string; hasColon: boolean }> {
  return text
    .split(/[,\n]/)
    .map((e) => e.trim())
    .filter((e) => e !== '')
    .map((entry) => {
      const colon = entry.indexOf(':')
      return colon === -1 ? { entry, name: entry, password: '', hasColon: false } : { entry, name: entry.slice(0, colon), password: entry.slice(colon + 1), hasColon: true }
    })
}


/**
 * HAProxy userlist users from `name:password` entries, comma or newline separated (inventory
 * §5.6). An entry without a password is dropped unless `fallback` (the usersSecret file, then
 * USERS) has the name.
 */
export function parseUsers(text: string, encrypted: boolean, fallback: readonly User[] = []): { users: User[]; invalid?: string } {
  const users: User[] = []
  // The problem names the entry by its position only: the text may be a secret file.
  for (const [index, { name, password }] of credentialEntries(text).entries()) {
    const nameProblem = userNameProblem(name)
    if (nameProblem) return { users, invalid: `entry ${index + 1}: the user name ${nameProblem}` }
    const secretProblem = passwordProblem(password)
    if (secretProblem) return { users, invalid: `entry ${index + 1}: the password ${secretProblem}` }
    const known = password === '' ? fallback.find((u) => u.name === name) : undefined
    if (password !== '') users.push({ name, password, encrypted })
    else if (known) users.push(known)
  }
  return { users }
}
