import { readFileSync } from 'node:fs'

/**
 * The host names `/etc/hosts` defines, read when the settings are (settings.HOSTS_FILE_NAMES),
 * so rendering reads no file of its own. HAProxy loads a configuration without any name lookup
 * (`init-addr last,none`): a slow DNS server would stall every reload. A name from this file is
 * the exception: its server line asks for the system lookup (`init-addr last,libc,none`), which
 * finds it in the file without asking DNS (`hosts: files dns`), since HAProxy's own resolvers
 * never read the file (`localhost`, `docker run --add-host`). No file: no names.
 */
export function readHostsFileNames(path = '/etc/hosts'): ReadonlySet<string> {
  const names = new Set<string>()
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
