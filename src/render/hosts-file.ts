import { readFileSync } from 'node:fs'

let names: Set<string> | undefined

/**
 * The host names `/etc/hosts` defines, read once. HAProxy loads a configuration without any
 * name lookup (`init-addr last,none`): a slow DNS server would stall every reload. A name from
 * this file is the exception: its server line asks for the system lookup (`init-addr
 * last,libc,none`), which finds it in the file without asking DNS (`hosts: files dns`), since
 * HAProxy's own resolvers never read the file (`localhost`, `docker run --add-host`).
 */
export function hostsFileNames(path = '/etc/hosts'): ReadonlySet<string> {
  if (names) return names
  names = new Set()
  let text = ''
  try {
    text = readFileSync(path, 'utf8')
  } catch {
    return names
  }
  for (const line of text.split('\n')) {
    const [address, ...aliases] = (line.split('#')[0] ?? '').trim().split(/\s+/)
    if (!address) continue
    for (const alias of aliases) names.add(alias.toLowerCase())
  }
  return names
}
