// Issue 12, item 2: no parameter value can make HAProxy serve a secret (an environment variable
// of the daemon, the state file, a secrets file), and HAProxy does not carry the daemon's
// secrets in its environment.
import { readFileSync, writeFileSync, mkdirSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { startWithUpstream } from '../helpers/daemon.js'
import { defined } from '../helpers/checks.js'

// The daemon's environment holds secrets a configuration could reach with env(…) or "$NAME".
process.env.USERS = 'alice:env-secret-password'
process.env.DFP_FAULT_SECRET = 'another-env-secret'

// (Not given to the daemon's settings: USERS there would put basic auth on every service.)
const { daemon, port } = await startWithUpstream('app')
const base = { serviceName: 'leaky', servicePath: '/leaky', port, outboundHostname: '127.0.0.1' }
mkdirSync(daemon.settings.SECRETS_DIR, { recursive: true })
writeFileSync(join(daemon.settings.SECRETS_DIR, 'dfp_users_team'), 'bob:secret-file-password\n')

/** Whatever a client can read back through the proxy, for the leaky service. */
async function exposed(): Promise<string> {
  const reply = await daemon.proxy('/leaky')
  return JSON.stringify(reply.headers) + reply.body
}

// Header values are data since issue 21 (docs/guarantees.md §12): the header carries the text
// written; the others are refused with a 400 naming the parameter.
const attempts: Array<[string, Record<string, string>, { header: string; value: string } | 'refused']> = [
  ['setResHeader with %[env(USERS)]', { setResHeader: 'X-U %[env(USERS)]' }, { header: 'x-u', value: '%[env(USERS)]' }],
  ['addResHeader with %[env(DFP_FAULT_SECRET)]', { addResHeader: 'X-S %[env(DFP_FAULT_SECRET)]' }, { header: 'x-s', value: '%[env(DFP_FAULT_SECRET)]' }],
  ['setResHeader with "${USERS}"', { setResHeader: 'X-U "${USERS}"' }, { header: 'x-u', value: '"${USERS}"' }],
  ['reqPathReplace reaching env()', { reqPathSearch: '^/leaky', reqPathReplace: '/%[env(USERS)]' }, 'refused'],
  ['backendExtra serving the state file', { backendExtra: `http-request return status 200 content-type text/plain file ${daemon.configDir}/dfp-state.json` }, 'refused'],
  ['backendExtra serving a secrets file', { backendExtra: `http-request return status 200 content-type text/plain file ${daemon.settings.SECRETS_DIR}/dfp_users_team` }, 'refused'],
  ['backendExtra with lf-file', { backendExtra: `http-request return status 200 lf-file ${daemon.configDir}/haproxy.cfg` }, 'refused'],
  ['setResHeader through a map file', { setResHeader: `X-M %[str(alice),map(${daemon.configDir}/dfp-state.json)]` }, 'refused'],
]

for (const [name, params, expected] of attempts) {
  t.test(name, async (t) => {
    const reply = await daemon.call('reconfigure', { ...base, ...params })
    if (expected === 'refused') {
      t.equal(reply.status, 400, `refused: ${reply.body}`)
      t.match(reply.json?.Message, new RegExp(`^${Object.keys(params).at(-1)}: `), 'the answer names the parameter')
    } else {
      t.equal(reply.status, 200, reply.body)
      t.equal((await daemon.proxy('/leaky')).headers[expected.header], expected.value, 'the header carries the text as written')
    }
    const seen = await exposed()
    for (const secret of ['env-secret-password', 'another-env-secret', 'secret-file-password', '"format"']) {
      t.notOk(seen.includes(secret), `nothing secret is served (${secret})`)
    }
  })
}

t.test('haproxy runs without the daemon\'s environment', async (t) => {
  const masterPid = defined(daemon.port.master.pid, 'the master pid')
  const environ = readFileSync(`/proc/${masterPid}/environ`, 'utf8').split('\0').filter(Boolean)
  const names = environ.map((entry) => entry.split('=')[0] ?? '')
  t.notOk(names.includes('USERS'), 'no USERS')
  t.notOk(names.includes('DFP_FAULT_SECRET'), 'no other variable of the daemon')
  t.notOk(environ.some((entry) => entry.includes('env-secret-password') || entry.includes('another-env-secret')), 'no secret value')
  // tap adds NODE_OPTIONS and its _TAPJS_* variables to every process a test spawns; HAPROXY_*
  // are the master's own.
  const inherited = names.filter((name) => !name.startsWith('_TAPJS_') && !name.startsWith('HAPROXY_') && name !== 'NODE_OPTIONS')
  t.ok(inherited.every((name) => ['PATH', 'LANG', 'LC_ALL', 'TZ', 'RES_OPTIONS', 'LOCALDOMAIN', 'HOSTALIASES'].includes(name)), `only PATH, locale, time zone and resolver options: ${inherited.join(' ')}`)
})

t.test('as root, the workers run as the haproxy user', async (t) => {
  const masterPid = defined(daemon.port.master.pid, 'the master pid')
  const children = readFileSync(`/proc/${masterPid}/task/${masterPid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean)
  t.ok(children.length >= 1, 'the master has a worker')
  const passwd = readFileSync('/etc/passwd', 'utf8')
  const haproxyUid = /^haproxy:[^:]*:(\d+):/m.exec(passwd)?.[1]
  t.equal(process.getuid?.(), 0, 'this test runs as root')
  t.ok(haproxyUid, 'the haproxy user exists')
  for (const pid of children) {
    const uid = /^Uid:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1]
    t.equal(uid, haproxyUid, `worker ${pid} runs as haproxy`)
  }
})

t.test('an ordinary header rule and backendExtra still work', async (t) => {
  const reply = await daemon.call('reconfigure', { ...base, setResHeader: 'X-Served-By dfp', backendExtra: 'http-response set-header X-Extra yes' })
  t.equal(reply.status, 200, reply.body)
  const served = await daemon.proxy('/leaky')
  t.equal(served.headers['x-served-by'], 'dfp')
  t.equal(served.headers['x-extra'], 'yes')
})
