import { Writable } from 'node:stream'
import t from 'tap'
import { createLogger } from '../../src/logger.js'

t.test('passwords, hashes, Authorization headers and certificate bodies are redacted', async (t) => {
  const out: string[] = []
  const sink = new Writable({
    write(chunk, _encoding, done) {
      out.push(String(chunk))
      done()
    },
  })
  const log = createLogger('info', sink)
  const pem = '-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBg\n-----END PRIVATE KEY-----'
  log.info({ req: { headers: { authorization: 'Basic YWRtaW46c2VjcmV0' } } }, 'request')
  log.info({ headers: { authorization: 'Basic YWRtaW46c2VjcmV0' } }, 'headers')
  log.info({ service: { serviceName: 's', users: [{ name: 'admin', password: 'hunter2' }] } }, 'service')
  log.info({ params: { serviceName: 's', users: 'admin:$6$salt$hash', serviceCert: pem } }, 'params')
  log.info({ certificate: { name: 'a.pem', pem } }, 'cert')
  log.info({ change: { service: { users: [{ password: 'hunter2' }] } } }, 'nested')
  log.info({ user: { password: 'hunter2' } }, 'user')
  const text = out.join('')
  for (const secret of ['YWRtaW46c2VjcmV0', 'hunter2', '$6$salt$hash', 'MIIEvQIBADANBg']) t.notOk(text.includes(secret), `${secret} is not logged`)
  t.match(text, /"serviceName":"s"/, 'the rest stays')
  t.equal(out.length, 7)
})
