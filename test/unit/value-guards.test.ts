import t from 'tap'
import { redactConfig } from '../../src/haproxy/redact.js'
import { checkParameters, checkValue, MAX_PARAMETERS } from '../../src/service/value-guards.js'

t.test('free-text values that would make HAProxy read a file or its environment are refused, with the reason', async (t) => {
  const refused: Array<[string, string, RegExp]> = [
    ['userDef', 'x %[env(USERS)]', /env\(\)/],
    ['userDef', 'x %[ENV (USERS)]', /env\(\)/],
    ['userDef', 'x "${USERS}"', /double quote/],
    ['userDef', 'x %[str(a),map(/cfg/dfp-state.json)]', /map files/],
    ['userDef', 'return status 200 file /cfg/dfp-state.json', /"file"/],
    ['userDef', 'server evil unix@/cfg/master.sock', /socket address/],
    ['pathType', 'path_beg -f /etc/passwd', /"-f"/],
  ]
  for (const [parameter, value, problem] of refused) t.match(checkValue(parameter, value), problem, `${parameter}=${value}`)
})

t.test('values written as data or read word by word are left to their own grammar', async (t) => {
  // header values, users, paths … are written so HAProxy reads the user's bytes (haproxy-text.ts);
  // backendExtra is checked by backend-extra.ts (test/unit/value-guards-grammar.test.ts)
  const accepted: Array<[string, string]> = [
    ['serviceName', 'file'],
    ['servicePath', '/file,/env,/map'],
    ['setResHeader', 'X-Served-By dfp'],
    ['setResHeader', 'X-U %[env(USERS)]'],
    ['addReqHeader.2', 'X-U "${USERS}"'],
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
