import t from 'tap'
import { render, renderAll, renderCrtList } from '../../src/render/index.js'
import { isMapRouted, mapFileText } from '../../src/render/maps.js'
import { parseService } from '../../src/service/params.js'
import { loadSettings } from '../../src/settings.js'
import { ServiceState } from '../../src/state/registry.js'
import { golden, haproxyVerdict } from '../helpers/golden.js'

// Golden files pin the rendered text; set UPDATE_GOLDEN=1 to rewrite them after a deliberate change.
const settings = loadSettings({ CONFIG_DIR: '/cfg', ERRORFILES_DIR: '/errorfiles', SECRETS_DIR: '/nonexistent', HAPROXY_USER: 'none' })
const state = (...queries: string[]) =>
  ServiceState.empty().with(queries.map((q) => ({ kind: 'put' as const, service: parseService(new URLSearchParams(q), { separator: ',' }) })))

const services = [
  'serviceName=go-demo&servicePath=/demo,/api&port=8080',
  'serviceName=root&servicePath=/&port=80&isDefaultBackend=true',
  'serviceName=acme&servicePath=/.well-known/acme-challenge&port=8080',
  'serviceName=shop&serviceDomain=shop.example.com,*.shop.example.org&port=3000&servicePathExclude=/admin&srcPort=80',
  'serviceName=multi&servicePath.1=/one&port.1=1111&servicePath.2=/two&port.2=2222&timeoutServer.2=60&timeoutTunnel=7200',
  'serviceName=rewrite&servicePath=/api/v1&port=9000&reqPathSearchReplace=^/api/v1/,/:/x,/y&reqPathSearch=/a&reqPathReplace=/b&outboundHostname=10.0.0.5',
  'serviceName=regex&servicePath=^/v[0-9]%2B/&pathType=path_reg&port=8081&serviceDomainAlgo=hdr_dom(host)&serviceDomain=regex.io',
  'serviceName=postgres&reqMode=tcp&srcPort=5432&port=5432',
  'serviceName=redis&reqMode=tcp&srcPort=6379&port=6379&serviceDomain=redis.local',
  'serviceName=mysql&reqMode=tcp&srcPort=3306&port=3306&timeoutClient=600&clitcpka=true&checkTcp=true',
  'serviceName=secure-upstream&servicePath=/tls&port=8443&sslVerifyNone=true',
  'serviceName=headers&servicePath=/h&port=7000&addReqHeader=X-A 1,X-B 2&setReqHeader=X-C 3&addResHeader=X-D 4&setResHeader=X-E 5&delReqHeader=X-F&delResHeader=Server&connectionMode=http-server-close&allowedMethods=GET,POST&deniedMethods=DELETE&denyHttp=true&httpsOnly=true&httpsRedirectCode=308&backendExtra=http-response set-header X-Extra yes',
  'serviceName=lb&servicePath=/lb&servicePathExclude=/lb/x&port=7001&redirectWhenHttpProto=true&httpsRedirectCode=301',
  'serviceName=private&servicePath.1=/private&port.1=7002&servicePath.2=/private-health&port.2=7002&ignoreAuthorization.2=true&users=alice:secret,bob:other',
] as const

t.test('services render as the golden file, and haproxy accepts it', async (t) => {
  const text = render(state(...services), settings)
  t.equal(text, golden('services', text))
  t.same(await haproxyVerdict(state(...services), settings), { ok: true })
})

t.test('global settings render as the golden file (stats port, DEBUG, captures, compression), and haproxy accepts it', async (t) => {
  const withSettings = loadSettings({
    HAPROXY_USER: 'none',
    CONFIG_DIR: '/cfg',
    ERRORFILES_DIR: '/errorfiles',
    SECRETS_DIR: '/nonexistent',
    STATS_USER: 'admin',
    STATS_PASS: 'pa$$',
    STATS_PORT: '9000',
    DEBUG: 'true',
    DEBUG_ERRORS_ONLY: 'true',
    DEBUG_HTTP_FORMAT: '%ci:%cp\\ %r',
    DEBUG_TCP_FORMAT: '%ci\\ %b',
    CAPTURE_REQUEST_HEADER: 'X-Request-Id:36,User-Agent:64',
    COMPRESSION_ALGO: 'gzip',
    COMPRESSION_TYPE: 'text/html text/plain',
  })
  const chosen = [services[0], 'serviceName=postgres&reqMode=tcp&srcPort=5432&port=5432']
  const text = render(state(...chosen), withSettings)
  t.equal(text, golden('settings', text))
  t.same(await haproxyVerdict(state(...chosen), withSettings), { ok: true })
})

t.test('the empty state renders as the golden file', async (t) => {
  const text = render(ServiceState.empty(), settings)
  t.equal(text, golden('empty', text))
  t.match(text, '    # 443:ssl is not bound: no certificate is loaded')
  t.match(text, '    bind *:80\n')
  t.notMatch(text, 'bind *:443')
})

t.test('rendering is deterministic and independent of the order services arrived in', async (t) => {
  const forward = render(state(...services), settings)
  const backward = render(state(...[...services].reverse()), settings)
  t.equal(forward, backward)
  t.equal(render(state(...services), settings), forward)
})

t.test('frontend order: ACL-routed services by the original order, the maps before the `/` ones', async (t) => {
  const text = render(state(...services), settings)
  const servicesFrontend = text.slice(text.indexOf('frontend services'), text.indexOf('frontend tcpFE_'))
  const order = [...servicesFrontend.matchAll(/use_backend (\S+?)(-be| if)/g)].map((m) => m[1])
  t.same(order, ['lb', 'regex', '%[var(txn.dfp_backend)]', 'shop'])
  const tcp = [...text.matchAll(/frontend tcpFE_(\d+)/g)].map((m) => Number(m[1]))
  t.same(tcp, [3306, 5432, 6379], 'TCP frontends sorted by port')
})

t.test('values reach the config exactly as given (no escaping, no second template pass)', async (t) => {
  const text = render(state("serviceName=odd&servicePath=/a&port=80&reqPathSearchReplace=^/a/(.%2B)$,/b/\\1&'{{x}}'&timeoutServer={{.DefaultReqMode}}"), settings)
  t.match(text, "http-request replace-path '^(.*?)(?:^/a/(.+)$)(.*)$' '\\1/b/\\2\\3'")
  t.match(text, 'timeout server {{.DefaultReqMode}}s')
})

t.test('the version line changes with the content and only with it', async (t) => {
  const a = render(state(services[0]), settings)
  const b = render(state(services[1]), settings)
  const version = (text: string) => /description (dfp-\w+)/.exec(text)?.[1]
  t.not(version(a), version(b))
  t.equal(version(a), version(render(state(services[0]), settings)))
})

t.test('certificates: crt-list order, PREFERRED_CERTIFICATE, and the :ssl bind options', async (t) => {
  const file = (name: string, source: 'folder' | 'secret', dir: string) => ({ name, source, path: `${dir}/${name}`, pem: 'x' })
  const withCerts = ServiceState.empty().with([
    { kind: 'cert-scan', files: [file('a.com', 'folder', '/certs'), file('z.com', 'folder', '/certs'), file('cert-m.com', 'secret', '/run/secrets')] },
    { kind: 'cert-put', name: 'up.com', pem: 'y' },
  ])
  t.equal(
    renderCrtList(withCerts, settings),
    '/cfg/certs/folder/a.com\n/cfg/certs/folder/z.com\n/cfg/certs/secret/cert-m.com\n/cfg/certs/uploaded/up.com\n',
    'copies of folder, secrets, uploaded',
  )
  t.equal(
    renderCrtList(withCerts, { ...settings, PREFERRED_CERTIFICATE: 'up*,*-m.com' }),
    '/cfg/certs/uploaded/up.com\n/cfg/certs/secret/cert-m.com\n/cfg/certs/folder/a.com\n/cfg/certs/folder/z.com\n',
    'preferred globs first, in their order',
  )
  t.match(render(withCerts, settings), '    bind *:443 ssl crt-list /cfg/crt-list.txt alpn h2,http/1.1\n')
  t.match(
    render(withCerts, { ...settings, ENABLE_H2: false, CA_FILE: '/ca.pem', CRT_LIST_PATH: '/etc/dfp/list.txt' }),
    '    bind *:443 ssl crt-list /etc/dfp/list.txt alpn http/1.1 ca-file /ca.pem verify optional\n',
  )
  t.not(render(withCerts, settings), render(withCerts.with([{ kind: 'cert-scan', files: [] }]), settings), 'the crt-list is part of the version')
})

t.test('map routing: plain prefixes and exact domains go to the maps, richer rules keep their ACLs', async (t) => {
  const { maps, config } = renderAll(state(...services), settings)
  t.equal(
    mapFileText(maps.path),
    [
      '/.well-known/acme-challenge 27:acme-be8080_0',
      '/demo 5:go-demo-be8080_0',
      '/api 4:go-demo-be8080_0',
      '/h 2:headers-be7000_0',
      '/one 4:multi-be1111_1',
      '/two 4:multi-be2222_2',
      '/private 8:private-be7002_1',
      '/private-health 15:private-be7002_2',
      '/api/v1 7:rewrite-be9000_0',
      '/tls 4:secure-upstream-be8443_0',
      '/ 1:root-be80_0',
      '',
    ].join('\n'),
    'one line per path, in frontend order',
  )
  t.equal(mapFileText(maps.hostPath), '', 'no exact-domain service in this set')
  t.notMatch(config, 'acl url_go-demo', 'map-routed services have no ACL')
  t.match(config, 'backend go-demo-be8080_0', 'backend names stay the same')
  t.match(config, 'default_backend root-be80_0')

  const domains = renderAll(state('serviceName=web&serviceDomain=Example.COM,www.example.com&servicePath=/,/app&port=80', 'serviceName=web2&servicePath=/app&port=81'), settings)
  t.equal(
    mapFileText(domains.maps.hostPath),
    'example.com/ 1:web-be80_0\nwww.example.com/ 1:web-be80_0\nexample.com/app 4:web-be80_0\nwww.example.com/app 4:web-be80_0\n',
    'host+path keys, lowercase host',
  )
  t.equal(mapFileText(domains.maps.path), '/app 4:web2-be81_0\n')
  const twice = renderAll(state('serviceName=b&servicePath=/same&port=1', 'serviceName=a&servicePath=/same&port=2'), settings)
  t.equal(mapFileText(twice.maps.path), '/same 5:a-be2_0\n', 'one key, two services: the first in the original order keeps it')
})

t.test('map eligibility is a whitelist', async (t) => {
  const service = (q: string) => parseService(new URLSearchParams(q), { separator: ',' })
  const algo = 'hdr_beg(host)'
  t.ok(isMapRouted(service('serviceName=a&servicePath=/a&port=1'), algo), 'a plain prefix')
  t.ok(isMapRouted(service('serviceName=a&serviceDomain=a.com&port=1'), algo), 'a plain domain')
  t.ok(isMapRouted(service('serviceName=a&servicePath=/a&port=1&addReqHeader=X-A 1&timeoutServer=9&users=u:p&httpsOnly=true'), algo), 'backend-only parameters')
  t.ok(
    isMapRouted(service('serviceName=a&servicePath=/a&port=1&compressionAlgo=gzip&checkResolvers=true&sessionType=sticky-server&verifyClientSsl=true&userDef=x&proxyInstanceName=p'), algo),
    'backend-only parameters of the later parameter work',
  )
  t.ok(isMapRouted(service('serviceName=a&servicePath=/a&port=1&discoveryType=DNS&replicas=3'), algo), 'DNS discovery')
  for (const [why, q] of [
    ['a wildcard domain', 'serviceName=a&serviceDomain=*.a.com&port=1'],
    ['pathType', 'serviceName=a&servicePath=/a&pathType=path_reg&port=1'],
    ['servicePathExclude', 'serviceName=a&servicePath=/a&servicePathExclude=/a/b&port=1'],
    ['srcPort', 'serviceName=a&servicePath=/a&srcPort=81&port=1'],
    ['serviceDomainAlgo', 'serviceName=a&serviceDomain=a.com&serviceDomainAlgo=hdr_dom(host)&port=1'],
    ['serviceDomainAlgo, even the default one', 'serviceName=a&serviceDomain=a.com&serviceDomainAlgo=hdr_beg(host)&port=1'],
    ['redirectWhenHttpProto', 'serviceName=a&servicePath=/a&redirectWhenHttpProto=true&port=1'],
    ['reqMode=tcp', 'serviceName=a&reqMode=tcp&srcPort=5000&port=1'],
    ['a path with ";" (the CLI separator)', 'serviceName=a&servicePath=/a;b&port=1'],
    ['serviceHeader', 'serviceName=a&servicePath=/a&port=1&serviceHeader=X-Version:2'],
    ['userAgent', 'serviceName=a&servicePath=/a&port=1&userAgent=curl'],
    ['httpsPort', 'serviceName=a&servicePath=/a&port=1&httpsPort=2'],
    ['redirectFromDomain', 'serviceName=a&serviceDomain=a.com&port=1&redirectFromDomain=b.com'],
    ['redirectUnlessHttpsProto', 'serviceName=a&servicePath=/a&port=1&redirectUnlessHttpsProto=true'],
    ['reqMode=sni', 'serviceName=a&reqMode=sni&srcPort=5443&port=1&serviceDomain=a.com'],
  ] as const) {
    t.notOk(isMapRouted(service(q), algo), why)
  }
  t.notOk(isMapRouted(service('serviceName=a&serviceDomain=a.com&port=1'), 'hdr_dom(host)'), 'SERVICE_DOMAIN_ALGO other than hdr_beg/hdr')
  t.ok(isMapRouted(service('serviceName=a&servicePath=/a&port=1'), 'hdr_dom(host)'), '…which does not matter without domains')
  const future = { ...service('serviceName=a&servicePath=/a&port=1'), someNewRule: ['x'] }
  t.notOk(isMapRouted(future, algo), 'a field the whitelist does not know keeps the service on ACLs when set')
  const emptied = { ...future, someNewRule: [] }
  t.ok(isMapRouted(emptied, algo), '…and not when empty')
  const dest = service('serviceName=a&servicePath=/a&port=1')
  t.notOk(isMapRouted({ ...dest, destinations: dest.destinations.map((d) => ({ ...d, newCondition: 'x' })) }, algo), 'same for destinations')
})
