import fc from 'fast-check'
import t from 'tap'
import { aclPatterns, configWord, headerValueProblem, logFormatWord, parseConfigLine, pathAsSent, runtimeWordProblem, userNameProblem } from '../../src/haproxy-text.js'
import { backendExtraLine, backendExtraWords } from '../../src/service/backend-extra.js'

// The adversarial alphabet of issue 21: both quotes, backslash and its escapes, %[, ${, #, ;, <<,
// CR, LF, NUL, blanks, non-ASCII, long runs.
const pieces = ['"', "'", '\\', '\\x41', '\\r', '\\n', '%[', '%', '${', '$', 'PATH}', '#', ';', '<<', '\r', '\n', '\0', ' ', '\t', 'ü', '😀', 'a', 'Z', '/', '(', ')', '{', '}', ',', ':']
export const adversarial = fc.array(fc.oneof(fc.constantFrom(...pieces), fc.string({ maxLength: 3 })), { maxLength: 12 }).map((parts) => parts.join(''))

t.test('the parse_line model reads back exactly what configWord wrote', async (t) => {
  fc.assert(
    fc.property(adversarial, (value) => {
      if (/[\r\n\0]/.test(value)) return t.throws(() => configWord(value)) !== undefined
      const parsed = parseConfigLine(`keyword ${configWord(value)} # a comment`)
      return parsed.error === undefined && !parsed.readsEnvironment && parsed.words.length === 2 && parsed.words[1] === value
    }),
    { numRuns: 2000, seed: 21 },
  )
})

t.test('the model reads quotes, escapes, variables and comments as HAProxy 2.6 does', async (t) => {
  t.same(parseConfigLine(`http-request return "fi""le" 'a b' c\\ d \\x41 "\\r" # x`).words, ['http-request', 'return', 'file', 'a b', 'c d', 'A', '\r'])
  t.same(parseConfigLine(`x 'don'\\''t' "#" '\\n'`).words, ['x', "don't", '#', '\\n'])
  t.equal(parseConfigLine('x "${PATH}"').readsEnvironment, true)
  t.equal(parseConfigLine('x "$PATH"').readsEnvironment, true)
  t.equal(parseConfigLine("x '${PATH}'").readsEnvironment, false, 'single quotes keep $ as data')
  t.match(parseConfigLine('x "open').error, /quote/)
  t.match(parseConfigLine('x \\xZZ').error, /hexadecimal/)
})

t.test('log-format values: % doubled, blanks that HAProxy would merge refused', async (t) => {
  t.equal(logFormatWord('%[env(PATH)]'), "'%%[env(PATH)]'")
  t.equal(logFormatWord('100%'), '100%%')
  t.match(headerValueProblem('a  b'), /two blanks/)
  t.match(headerValueProblem(' a'), /start or end/)
  t.match(headerValueProblem('a\r\nX-Injected: yes'), /control/)
  t.equal(headerValueProblem('a\\r\\nX-Injected: yes'), undefined, 'a backslash is data')
})

t.test('ACL patterns never become flags; names and runtime keys have their own grammar', async (t) => {
  t.equal(aclPatterns(['-f', '/etc/passwd']), ' -- -f /etc/passwd')
  t.equal(aclPatterns(['/a b']), " '/a b'")
  t.equal(pathAsSent('/ünï'), '/%C3%BCn%C3%AF')
  t.match(userNameProblem('b"ob'), /quotes/)
  t.match(userNameProblem('bob x'), /blanks/)
  t.equal(userNameProblem('bob.o-k_1@x'), undefined)
  t.match(runtimeWordProblem('/lt<<'), /Runtime API/)
  t.match(runtimeWordProblem('/a;show'), /Runtime API/)
  t.equal(runtimeWordProblem('/a/b%20c'), undefined)
})

t.test('backendExtra: allowed directives pass and are written back from their words', async (t) => {
  const accepted: Array<[string, string]> = [
    ['http-response set-header X-Extra yes', 'http-response set-header X-Extra yes'],
    ['http-request set-header X-Who "%[req.hdr(host),lower]"', "http-request set-header X-Who '%[req.hdr(host),lower]'"],
    ['timeout check 5s', 'timeout check 5s'],
    ['option httpchk GET /health', 'option httpchk GET /health'],
    ['http-request deny if { path_beg /admin }', "http-request deny if '{' path_beg /admin '}'"],
    ['http-response set-header X-A "a b"', "http-response set-header X-A 'a b'"],
  ]
  for (const [line, written] of accepted) {
    const read = backendExtraWords(line)
    t.ok('words' in read, line)
    if ('words' in read) t.equal(backendExtraLine(read.words), written, line)
  }
})

t.test('backendExtra: no spelling reads a file, the environment, another section or opens one', async (t) => {
  const refused: Array<[string, RegExp]> = [
    ['http-request return status 200 content-type text/plain "file" /etc/passwd', /"file"/],
    ['http-request return status 200 content-type text/plain fi""le /etc/passwd', /"file"/],
    ["http-request return status 200 content-type text/plain 'f'il\\x65 /etc/passwd", /"file"/],
    ['http-request return status 200 lf-file /etc/passwd', /"lf-file"/],
    ['http-request deny errorfile /etc/shadow', /"errorfile"/],
    ['http-response set-header X-E %[e""nv(PATH)]', /env\(\)/],
    ['http-response set-header X-E "%[env(PATH)]"', /env\(\)/],
    ['http-response set-header X-E "${PATH}"', /environment/],
    ['http-request set-var(txn.x) be_conn(victim-be80_0)', /be_conn\(\)/],
    ['http-request set-var(txn.x) nbsrv(victim-be80_0)', /nbsrv\(\)/],
    ['acl a srv_is_up(victim-be80_0/victim) http-request deny if a', /srv_is_up\(\)/],
    ['acl ok http_auth(users:other)', /http_auth\(\)/],
    ['http-request set-var(txn.x) src,map(/cfg/maps/path.map)', /map\(\)/],
    ['http-request set-map(/cfg/maps/path.map) a b', /set-map/],
    ['http-request track-sc0 src table victim', /track-sc0/],
    ['acl a path -f /etc/passwd', /"-f"/],
    ['server evil unix@/cfg/master.sock', /"server" is not a directive/],
    ['errorfile 503 /etc/shadow', /"errorfile" is not a directive/],
    ['backend other', /"backend" would open a new section/],
    ['"backend" other', /"backend" would open a new section/],
    ["user'list' x", /"userlist" would open a new section/],
    ['.if defined(X)', /is not a directive/],
    ['stats admin if TRUE', /"stats" is not a directive/],
    ['http-response set-header X-A "a\\r\\nX-Injected: yes"', /control characters/],
    ['http-request set-var(txn.x) lua.evil', /Lua/],
    ['http-request use-service lua.x', /use-service/],
    ['http-request set-header X "open', /quote/],
    ['option external-check', /"option external-check" is not an option/],
    ['no option "external-check"', /"option external-check" is not an option/],
  ]
  for (const [line, problem] of refused) {
    const read = backendExtraWords(line)
    t.match('problem' in read ? read.problem : '(accepted)', problem, line)
  }
})
