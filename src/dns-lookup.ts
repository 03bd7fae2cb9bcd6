import { promises as dns } from 'node:dns'

/**
 * The addresses of `host`: asked of `servers` (DNS_SERVERS, A records) when there are some, else
 * of the system resolver (`family` 4 for IPv4 only, 0 for any). Throws what the lookup throws.
 */
export function lookupAddresses(host: string, servers: readonly string[], { timeoutMs, tries, family }: { timeoutMs: number; tries: number; family: 0 | 4 }): Promise<string[]> {
  if (servers.length === 0) return dns.lookup(host, { all: true, family }).then((found) => found.map((entry) => entry.address))
  const resolver = new dns.Resolver({ timeout: timeoutMs, tries })
  resolver.setServers([...servers])
  return resolver.resolve4(host)
}
