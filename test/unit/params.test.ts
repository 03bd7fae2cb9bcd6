import t from 'tap'
import { DfpError } from '../../src/errors.js'
import { parseService } from '../../src/service/params.js'

const parse = (params: Record<string, unknown>, separator = ',') => parseService(params, { separator })
const failure = (params: Record<string, unknown>) => {
  try {
    parse(params)
  } catch (err) {
    if (err instanceof DfpError) return { status: err.statusCode, message: err.message, service: err.serviceName }
    throw err
  }
  throw new Error('expected a DfpError')
}

t.test('one non-indexed destination with defaults', async (t) => {
  const service = parse({ serviceName: 'go-demo', servicePath: '/demo,/api', port: '8080' })
  t.same(service, {
    serviceName: 'go-demo',
    aclName: 'go-demo',
    isDefaultBackend: false,
    redirectWhenHttpProto: false,
    redirectUnlessHttpsProto: false,
    checkResolvers: false,
    headers: { addReqHeader: [], setReqHeader: [], addResHeader: [], setResHeader: [], delReqHeader: [], delResHeader: [] },
    users: [],
    destinations: [
      {
        index: 0,
        reqMode: 'http',
        port: '8080',
        servicePath: ['/demo', '/api'],
        pathType: 'path_beg',
        servicePathExclude: [],
        serviceDomain: [],
        reqPathSearchReplace: [],
        httpsOnly: false,
        allowedMethods: [],
        deniedMethods: [],
        denyHttp: false,
        ignoreAuthorization: false,
        sslVerifyNone: false,
        clitcpka: false,
        checkTcp: false,
        serviceHeader: [],
        userAgent: [],
        redirectFromDomain: [],
        verifyClientSsl: false,
      },
    ],
  })
})

t.test('indexed destinations fall back to non-indexed values and stop at the first gap', async (t) => {
  const service = parse({
    serviceName: 's',
    'servicePath.1': '/a',
    'port.1': '1001',
    'port.2': '1002',
    servicePath: '/fallback',
    timeoutServer: '9',
    'timeoutServer.2': '30',
    'port.4': '1004',
    'servicePath.4': '/never',
  })
  t.equal(service.destinations.length, 2, 'index 3 is missing, so 4 is never read')
  t.match(service.destinations[0], { index: 1, port: '1001', servicePath: ['/a'], timeoutServer: '9' })
  t.match(service.destinations[1], { index: 2, port: '1002', servicePath: ['/fallback'], timeoutServer: '30' })
})

t.test('indexed keys up to 10', async (t) => {
  const params: Record<string, string> = { serviceName: 's' }
  for (let n = 1; n <= 11; n++) {
    params[`servicePath.${n}`] = `/p${n}`
    params[`port.${n}`] = String(1000 + n)
  }
  t.equal(parse(params).destinations.length, 10)
})

t.test('a domain without a path routes /', async (t) => {
  const [dest] = parse({ serviceName: 's', serviceDomain: 'a.com,*.b.com', port: '80' }).destinations
  t.same(dest?.servicePath, ['/'])
  t.same(dest?.serviceDomain, ['a.com', '*.b.com'])
})

t.test('SEPARATOR splits lists', async (t) => {
  t.same(parse({ serviceName: 's', servicePath: '/a;/b', port: '80' }, ';').destinations[0]?.servicePath, ['/a', '/b'])
})

t.test('reqMode is case-insensitive; tcp needs srcPort', async (t) => {
  t.match(parse({ serviceName: 's', reqMode: 'TCP', srcPort: '5432', port: '5432' }).destinations[0], { reqMode: 'tcp', srcPort: 5432 })
})

t.test('rewrite pairs', async (t) => {
  t.same(parse({ serviceName: 's', servicePath: '/', port: '80', reqPathSearchReplace: '^/a/,/:/b,/c' }).destinations[0]?.reqPathSearchReplace, [
    ['^/a/', '/'],
    ['/b', '/c'],
  ])
  t.match(parse({ serviceName: 's', servicePath: '/', port: '80', reqPathSearch: '/x', reqPathReplace: '/y' }), { reqPathSearch: '/x', reqPathReplace: '/y' })
})

t.test('a repeated key counts with its first value; unknown and internal keys are ignored', async (t) => {
  const service = parse({ serviceName: ['first', 'second'], servicePath: '/', port: '80', aclCondition: ' if TRUE', tasks: '1.2.3.4', nodeInfo: '{}' })
  t.equal(service.serviceName, 'first')
  t.notOk('aclCondition' in service)
  t.notOk('tasks' in service)
  t.equal(parse({ serviceName: 's', servicePath: '/', port: '80' }).aclName, 's')
})

t.test('bools accept the original forms', async (t) => {
  for (const value of ['true', 'TRUE', 't', '1', 'on']) t.equal(parse({ serviceName: 's', servicePath: '/', port: '80', isDefaultBackend: value }).isDefaultBackend, true)
  for (const value of ['false', 'F', '0', 'off']) t.equal(parse({ serviceName: 's', servicePath: '/', port: '80', isDefaultBackend: value }).isDefaultBackend, false)
})

t.test('validation order and messages follow the original', async (t) => {
  t.same(failure({ servicePath: '/x' }), { status: 400, message: 'serviceName parameter is mandatory.', service: undefined })
  t.same(failure({ serviceName: 's' }), { status: 409, message: 'When using reqMode http, servicePath or serviceDomain are mandatory', service: 's' })
  t.equal(failure({ serviceName: 's', reqMode: 'tcp', port: '1' }).status, 400)
  t.same(failure({ serviceName: 's', servicePath: '/' }), { status: 400, message: 'When MODE is set to "service" or "swarm", the port query is mandatory', service: 's' })
})

t.test('values that would break haproxy.cfg are refused, naming the parameter', async (t) => {
  t.match(failure({ serviceName: 's', servicePath: '/a\n    stats enable', port: '80' }), { status: 400, message: /^servicePath: /, service: 's' })
  t.match(failure({ serviceName: 's', servicePath: '/a', port: '80', 'timeoutServer': '1\u0000' }), { status: 400, message: /^timeoutServer: / })
  t.match(failure({ serviceName: 's', 'servicePath.1': '/a', 'port.1': '80', 'serviceDomain.1': 'a.com b.com' }), { status: 400, message: /^serviceDomain\.1: / })
  t.match(failure({ serviceName: 's', servicePath: '/a', port: '80', outboundHostname: 'h #x' }), { status: 400, message: /^outboundHostname: / })
  t.match(failure({ serviceName: '../etc', servicePath: '/a', port: '80' }), { status: 400, message: /^serviceName: / })
})

t.test('header rules keep their spaces; deprecated names still work; HTTPS_ONLY applies to every destination', async (t) => {
  const service = parseService({ serviceName: 's', servicePath: '/', port: '80', addHeader: 'X-A 1,X-B two words', setResHeader: 'X-C 3', addReqHeader: '' }, { separator: ',' })
  t.same(service.headers.addReqHeader, ['X-A 1', 'X-B two words'])
  t.same(service.headers.setResHeader, ['X-C 3'])
  const forced = parseService({ serviceName: 's', 'servicePath.1': '/a', 'port.1': '80', 'servicePath.2': '/b', 'port.2': '81' }, { separator: ',', httpsOnly: true })
  t.same(forced.destinations.map((d) => d.httpsOnly), [true, true])
  t.match(failure({ serviceName: 's', servicePath: '/', port: '80', allowedMethods: 'GET,PO ST' }), { status: 400, message: /^allowedMethods: / })
  t.match(failure({ serviceName: 's', servicePath: '/', port: '80', connectionMode: 'keep' }), { status: 400, message: /^connectionMode: / })
  t.match(failure({ serviceName: 's', servicePath: '/', port: '80', backendExtra: 'a\nb' }), { status: 400, message: /^backendExtra: / })
})

t.test('users: entries, passwords from USERS for names without one, refused forms', async (t) => {
  const globalUsers = [{ name: 'ops', password: 'fromglobal', encrypted: false }]
  const service = parseService({ serviceName: 's', servicePath: '/', port: '80', users: 'alice:pw1,ops,nobody', usersPassEncrypted: 'true' }, { separator: ',', globalUsers })
  t.same(service.users, [
    { name: 'alice', password: 'pw1', encrypted: true },
    { name: 'ops', password: 'fromglobal', encrypted: false },
  ], 'a name without password takes it from USERS; unknown ones are dropped')
  t.match(failure({ serviceName: 's', servicePath: '/', port: '80', users: 'b"ob:x' }), { status: 400, message: /^users: entry 1: the user name/ })
  t.match(failure({ serviceName: 's', servicePath: '/', port: '80', usersSecret: '../x' }), { status: 400, message: /^usersSecret: / })
  t.match(failure({ serviceName: 's', servicePath: '/', port: '80', usersSecret: 'missing' }), { status: 400, message: /^usersSecret: no secret dfp_users_missing/ })
})

t.test('serviceDomainMatchAll asks for hdr_dom(host) unless serviceDomainAlgo is given', async (t) => {
  t.equal(parse({ serviceName: 's', serviceDomain: 'a.com', port: '80', serviceDomainMatchAll: 'true' }).serviceDomainAlgo, 'hdr_dom(host)')
  t.equal(parse({ serviceName: 's', serviceDomain: 'a.com', port: '80', serviceDomainMatchAll: 'true', serviceDomainAlgo: 'hdr(host)' }).serviceDomainAlgo, 'hdr(host)')
})

t.test('CHECK_RESOLVERS is the default of checkResolvers; the service’s own value wins (D8)', async (t) => {
  const base = { serviceName: 's', servicePath: '/s', port: '80' }
  // The original overwrote every service's flag with CHECK_RESOLVERS (false in its image).
  t.equal(parseService({ ...base, checkResolvers: 'true' }, { separator: ',', checkResolvers: false }).checkResolvers, true)
  t.equal(parseService({ ...base, checkResolvers: 'false' }, { separator: ',', checkResolvers: true }).checkResolvers, false)
  t.equal(parseService(base, { separator: ',', checkResolvers: true }).checkResolvers, true)
  t.equal(parseService(base, { separator: ',' }).checkResolvers, false)
})
