import { execFileSync } from 'node:child_process'
import t from 'tap'
import { ApiAuthenticator, parseApiUsers } from '../../src/auth/api-users.js'
import { loadSettings, SettingsError } from '../../src/settings.js'
import { messageOf } from '../../src/errors.js'

const header = (credentials: string) => `Basic ${Buffer.from(credentials).toString('base64')}`

t.test('API_USERS entries', async (t) => {
  t.same(parseApiUsers(''), [])
  t.same(parseApiUsers(' a:b ,\nc:$6$salt$abc/.D9\n'), [
    { name: 'a', password: 'b', hashed: false },
    { name: 'c', password: '$6$salt$abc/.D9', hashed: true },
  ])
  t.throws(() => parseApiUsers('admin'), /must be user:password/)
  t.throws(() => parseApiUsers('admin:'), /must be user:password/)
  t.throws(() => parseApiUsers('admin:$1$md5$hash'), /not a SHA-crypt hash/, 'MD5-crypt is refused')
})

t.test('a bad API_USERS stops the start without printing it', async (t) => {
  const err = t.throws(() => loadSettings({ API_USERS: 'admin:$2y$secret-looking', SECRETS_DIR: '/nonexistent' }))
  t.ok(err instanceof SettingsError)
  t.match(messageOf(err), /API_USERS .*not a SHA-crypt hash.*\(value not shown\)/)
  t.notMatch(messageOf(err), /secret-looking/)
  t.equal(loadSettings({ SECRETS_DIR: '/nonexistent' }).STATUS_PUBLIC, true)
  t.equal(loadSettings({ STATUS_PUBLIC: 'false', SECRETS_DIR: '/nonexistent' }).STATUS_PUBLIC, false)
})

t.test('credentials are checked against clear-text passwords and SHA-crypt hashes', async (t) => {
  const sha256 = execFileSync('openssl', ['passwd', '-5', 'five'], { encoding: 'utf8' }).trim()
  const sha512 = execFileSync('openssl', ['passwd', '-6', '-salt', 'abc', 'six'], { encoding: 'utf8' }).trim()
  const auth = new ApiAuthenticator(parseApiUsers(`plain:pw:with:colons,five:${sha256},six:${sha512}`))
  t.equal(auth.check(header('plain:pw:with:colons')), 'plain', 'the password may contain colons')
  t.equal(auth.check(header('five:five')), 'five')
  t.equal(auth.check(header('six:six')), 'six')
  t.equal(auth.check(header('six:six')), 'six', 'again (remembered)')
  t.equal(auth.check(header('six:five')), undefined)
  t.equal(auth.check(header('five:six')), undefined)
  t.equal(auth.check(header('plain:pw')), undefined)
  t.equal(auth.check(header('nobody:six')), undefined)
  t.equal(auth.check(header('sixsix')), undefined, 'no colon')
  t.equal(auth.check(undefined), undefined)
  t.equal(auth.check('Basic'), undefined)
  t.equal(auth.check('Basic !!!'), undefined)
  t.equal(auth.check(`Digest ${Buffer.from('six:six').toString('base64')}`), undefined)
  t.equal(new ApiAuthenticator([]).enabled, false)
})
