import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { validateConfig } from '../../src/haproxy/validate.js'
import { TestDns } from '../helpers/dns.js'

// `haproxy -c` of a candidate looks no name up, even on a server line looked up at load
// (`init-addr last,libc,none`: colours, servers of a route shared by weight, names of /etc/hosts):
// the system resolver of a Swarm task may wait for a name Docker's DNS does not know yet, which
// held a canary's reconfigure 4 s in the check alone. HAProxy's system resolver asks the test's
// DNS server (a mount namespace whose /etc/resolv.conf names it), which counts the queries.
const dnsHost = `127.53.${1 + Math.floor(Math.random() * 250)}.${1 + Math.floor(Math.random() * 250)}`
const dns = await new TestDns({ 'canary.test': ['127.0.0.1'] }).start(dnsHost, 53)
const dir = await mkdtemp(join(tmpdir(), 'dfp-validate-'))
await writeFile(join(dir, 'resolv.conf'), `nameserver ${dnsHost}\n`)
await writeFile(join(dir, 'haproxy'), `#!/bin/sh\nexport RES_OPTIONS='timeout:1 attempts:1'\nexec unshare -m sh -c 'mount --bind ${dir}/resolv.conf /etc/resolv.conf && exec "$0" "$@"' haproxy "$@"\n`, { mode: 0o755 })
t.teardown(async () => {
  await dns.stop()
  await rm(dir, { recursive: true, force: true })
})

const config = (serverLine: string) => `global
resolvers docker
    nameserver dns ${dnsHost}:53
defaults
    mode http
    timeout connect 5s
    timeout client 5s
    timeout server 5s
frontend f
    bind 127.0.0.1:65500
    default_backend b
backend b
    ${serverLine}
`

t.test('a server looked up at load is not looked up by the check', async (t) => {
  const result = await validateConfig(join(dir, 'haproxy'), dir, () => ({ config: config('server canary canary.test:80 init-addr last,libc,none resolvers docker'), mapFiles: [] }))
  t.same(result, { ok: true })
  t.equal(dns.queries.get('canary.test') ?? 0, 0, 'no query for its name')
})

t.test('the check still refuses a wrong line', async (t) => {
  const result = await validateConfig(join(dir, 'haproxy'), dir, () => ({ config: config('server canary canary.test:80 init-addr last,libc,none resolvers docker nonsense'), mapFiles: [] }))
  t.equal(result.ok, false)
})
