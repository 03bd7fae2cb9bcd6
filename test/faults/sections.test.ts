// Issue 12, item 10: backendExtra stays inside its backend; a value that would open a section
// is a 400 and never reaches the configuration.
import t from 'tap'
import { startWithUpstream } from '../helpers/daemon.js'

const { daemon, port } = await startWithUpstream('app')
const base = { serviceName: 'extra', servicePath: '/extra', port, outboundHostname: '127.0.0.1' }

for (const backendExtra of ['global', 'listen evil', 'frontend evil2', 'backend other', 'defaults', 'userlist u', 'peers p', 'resolvers r', 'program p', 'http-errors e', 'ring r', 'cache c', 'mailers m', '  Frontend x']) {
  t.test(`backendExtra=${JSON.stringify(backendExtra)}`, async (t) => {
    const reply = await daemon.call('reconfigure', { ...base, backendExtra })
    t.equal(reply.status, 400, reply.body)
    t.match(reply.json?.Message, /^backendExtra: .*new section/, 'names the parameter and the problem')
    const config = (await daemon.call('config')).body
    t.notMatch(config, new RegExp(`^ {4}${backendExtra.trim()}$`, "mi"), "not in the configuration")
  })
}

t.test('a directive inside the backend is accepted', async (t) => {
  const reply = await daemon.call('reconfigure', { ...base, backendExtra: 'http-response set-header X-Extra yes' })
  t.equal(reply.status, 200, reply.body)
  t.equal((await daemon.proxy('/extra')).headers['x-extra'], 'yes')
})
