import { execFileSync } from 'node:child_process'
import { mkdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import t from 'tap'
import { startDaemon } from '../helpers/daemon.js'
import { httpUpstream } from '../helpers/net.js'
import type { ConfigAnswer } from '../helpers/api-json.js'

// Basic authentication through the real haproxy, with plain, hashed (openssl passwd -6) and
// secret-file users, the global USERS, and ignoreAuthorization.
const hash = (password: string) => execFileSync('openssl', ['passwd', '-6', password], { encoding: 'utf8' }).trim()
const basic = (user: string, password: string) => ({ authorization: `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}` })
const upstream = await httpUpstream('private')
const port = String(upstream.port)
const daemon = await startDaemon({ USERS: 'admin:globalpw' })
await mkdir(daemon.settings.SECRETS_DIR, { recursive: true })
t.teardown(async () => {
  await daemon.close()
  await upstream.close()
})
const reconfigure = (params: Record<string, string>) => daemon.call('reconfigure', { outboundHostname: '127.0.0.1', port, ...params })

t.test('USERS protects every service without users of its own', async (t) => {
  t.equal((await reconfigure({ serviceName: 'open', servicePath: '/open' })).status, 200)
  t.equal((await daemon.proxy('/open')).status, 401)
  t.equal((await daemon.proxy('/open', basic('admin', 'wrong'))).status, 401)
  const ok = await daemon.proxy('/open', basic('admin', 'globalpw'))
  t.equal(ok.status, 200)
  t.notOk('authorization' in JSON.parse(ok.body).headers, 'the credentials do not reach the service')
})

t.test('service users replace the global ones (the original required both)', async (t) => {
  const reply = await reconfigure({ serviceName: 'plain', servicePath: '/plain', users: 'alice:wonderland' })
  t.equal(reply.status, 200)
  t.notMatch(reply.body, 'wonderland', 'the password is not echoed')
  t.equal((await daemon.proxy('/plain')).status, 401)
  t.equal((await daemon.proxy('/plain', basic('alice', 'wonderland'))).status, 200)
  t.equal((await daemon.proxy('/plain', basic('admin', 'globalpw'))).status, 401)
  t.notMatch((await daemon.call('config', { type: 'json' })).body, 'wonderland', '/config?type=json has no password')
  t.same((await daemon.call<ConfigAnswer>('config', { type: 'json' })).json.plain?.users, [{ name: 'alice', encrypted: false }])
})

t.test('hashed passwords, and users from a secret', async (t) => {
  t.equal((await reconfigure({ serviceName: 'hashed', servicePath: '/hashed', users: `bob:${hash('builder')}`, usersPassEncrypted: 'true' })).status, 200)
  t.equal((await daemon.proxy('/hashed', basic('bob', 'builder'))).status, 200)
  t.equal((await daemon.proxy('/hashed', basic('bob', 'wrong'))).status, 401)
  await writeFile(join(daemon.settings.SECRETS_DIR, 'dfp_users_team'), 'carol:fromsecret\ndave:second\n')
  t.equal((await reconfigure({ serviceName: 'team', servicePath: '/team', usersSecret: 'team' })).status, 200)
  t.equal((await daemon.proxy('/team', basic('carol', 'fromsecret'))).status, 200)
  t.equal((await daemon.proxy('/team', basic('dave', 'second'))).status, 200)
  t.equal((await daemon.proxy('/team', basic('admin', 'globalpw'))).status, 401)
})

t.test('ignoreAuthorization opens one destination', async (t) => {
  const reply = await reconfigure({
    serviceName: 'mixed',
    'servicePath.1': '/mixed/app',
    'port.1': port,
    'servicePath.2': '/mixed/health',
    'port.2': port,
    'ignoreAuthorization.2': 'true',
    users: 'erin:pw',
  })
  t.equal(reply.status, 200)
  t.equal((await daemon.proxy('/mixed/app')).status, 401)
  t.equal((await daemon.proxy('/mixed/health')).status, 200)
})
