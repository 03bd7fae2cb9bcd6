import t from 'tap'
import { redactConfig } from '../../src/haproxy/redact.js'
import { checkParameters, checkValue, MAX_PARAMETERS } from '../../src/service/value-guards.js'

t.test('values that would make HAProxy read a file or its environment are refused, with the reason', async (t) => {
  const refused: Array<[string, string, RegExp]> = [
    ['setResHeader', 'X-U %[env(USERS)]', /env\(\)/],
    ['addReqHeader', 'X-U %[ENV (USERS)]', /env\(\)/],
    ['setResHeader', 'X-U "${USERS}"', /double quote/],
    ['setResHeader', 'X-U "$USERS"', /double quote/],
    ['setResHeader', 'X-M %[str(a),map(/cfg/dfp-state.json)]', /map files/],
    ['backendExtra', 'http-request set-map(/cfg/maps/path.map) a b', /map files/],
    ['backendExtra', 'http-request return status 200 file /cfg/dfp-state.json', /"file"/],
    ['backendExtra', 'http-request return status 200 lf-file /etc/passwd', /"lf-file"/],
    ['backendExtra', 'errorfile 503 /etc/shadow', /"errorfile"/],
    ['backendExtra', 'server evil unix@/cfg/master.sock', /socket address/],
    ['pathType', 'path_beg -f /etc/passwd', /"-f"/],
    ['backendExtra', 'global', /new section/],
    ['backendExtra', 'Listen evil', /new section/],
    ['backendExtra', '.notice "x"', /conditional block or diagnostic/],
    ['backendExtra', 'stats admin if TRUE', /statistics page/],
  ]
  for (const [parameter, value, problem] of refused) t.match(checkValue(parameter, value), problem, `${parameter}=${value}`)
})

t.test('ordinary values pass', async (t) => {
  const accepted: Array<[string, string]> = [
    ['serviceName', 'file'],
    ['servicePath', '/file,/env,/map'],
    ['setResHeader', 'X-Served-By dfp'],
    ['backendExtra', 'http-response set-header X-Extra yes'],
    ['users', 'alice:$6$rounds=1000$salt$hash'],
    ['reqPathSearch', '^/api/(.*)$'],
    ['pathType', 'path_beg -i'],
  ]
  for (const [parameter, value] of accepted) t.equal(checkValue(parameter, value), undefined, `${parameter}=${value}`)
})

t.test('bounds name the limit', async (t) => {
  const many = Array.from({ length: MAX_PARAMETERS + 1 }, (_, i) => [`p${i}`, 'x'] as const)
  t.match(checkParameters(many), { parameter: 'request', problem: /MAX_PARAMETERS/ })
  t.match(checkParameters([['padding', 'x'.repeat(5000)]]), { parameter: 'padding', problem: /MAX_VALUE_LENGTH/ })
  t.match(checkParameters(Array.from({ length: 20 }, (_, i) => [`n${i}`, 'y'.repeat(4000)] as const)), { problem: /MAX_STORED_CHARACTERS/ })
  t.equal(checkParameters([['serviceCert', 'z'.repeat(100_000)]]), undefined, 'serviceCert is not stored with the service')
})

t.test('redactConfig blanks passwords and keeps the lines', async (t) => {
  const text = ['userlist u', '    user alice insecure-password s3cret', '    user bob password $6$abc$def', '    stats auth admin:pw', '    http-request set-header Authorization Basic YWJj'].join('\n')
  t.equal(
    redactConfig(text),
    ['userlist u', '    user alice insecure-password <redacted>', '    user bob password <redacted>', '    stats auth admin:<redacted>', '    http-request set-header Authorization <redacted>'].join('\n'),
  )
})
