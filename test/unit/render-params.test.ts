import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { DfpError } from '../../src/errors.js'
import { render } from '../../src/render/index.js'
import { parseService } from '../../src/service/params.js'
import { loadSettings } from '../../src/settings.js'
import { ServiceState } from '../../src/state/registry.js'
import { golden, haproxyVerdict } from '../helpers/golden.js'

// The parameters of issue 3 whose effect is pinned by text: golden file test/golden/params.cfg
// (UPDATE_GOLDEN=1 rewrites it), checked by haproxy -c.
const templatesDir = mkdtempSync(join(tmpdir(), 'dfp-templates-'))
t.teardown(() => rmSync(templatesDir, { recursive: true, force: true }))
writeFileSync(join(templatesDir, 'custom-fe.hbs'), '    acl url_custom{{destinations.0.port}} path_beg /custom\n    use_backend custom-be if url_custom{{destinations.0.port}}\n')
writeFileSync(join(templatesDir, 'custom-be.hbs'), 'backend custom-be\n    mode http\n{{#each destinations}}\n    server {{../serviceName}} {{outboundHostname}}:{{port}} # {{../userDef}} {{userDef}}\n{{/each}}\n')

const settings = loadSettings({ CONFIG_DIR: '/cfg', ERRORFILES_DIR: '/errorfiles', SECRETS_DIR: '/nonexistent', HAPROXY_USER: 'none', TEMPLATES_DIR: templatesDir })
const options = { separator: ',', templatesDir }
const parse = (q: string) => parseService(new URLSearchParams(q), options)
const state = (...queries: string[]) => ServiceState.empty().with(queries.map((q) => ({ kind: 'put' as const, service: parse(q) })))
const failure = (q: string) => {
  try {
    parse(q)
  } catch (err) {
    if (err instanceof DfpError) return { status: err.statusCode, message: err.message }
    throw err
  }
  throw new Error('expected a DfpError')
}

const services = [
  'serviceName=headers&servicePath.1=/h1&port.1=7001&servicePath.2=/h2&port.2=7001&serviceHeader=X-Version:2,X-Api:beta&serviceHeader.2=X-Team:blue',
  'serviceName=agents&servicePath=/ua&port=7002&userAgent=iPhone,Android;Mobile',
  'serviceName=moved&serviceDomain=new.example.com&port=7003&redirectFromDomain=old.example.com,legacy.example.com',
  'serviceName=behind-lb&servicePath=/lb&port=7004&redirectUnlessHttpsProto=true&httpsRedirectCode=308',
  'serviceName=sticky&servicePath=/sticky&port=7005&sessionType=sticky-server&replicas=3',
  'serviceName=zipped&servicePath=/zip&port=7006&compressionAlgo=gzip&compressionType=text/html,application/json',
  'serviceName=checked&servicePath=/checked&port=7007&checkResolvers=true',
  'serviceName=dns&servicePath=/dns&port=7008&discoveryType=DNS&replicas=4',
  'serviceName=global-dns&servicePath=/global&port=7009&discoveryType=dns',
  'serviceName=certs&servicePath=/certs&port=7010&verifyClientSsl=true',
  'serviceName=both&servicePath=/both&port=8080&httpsPort=8443&srcPort=80&srcHttpsPort=443&userAgent=curl',
  'serviceName=tls-only&servicePath=/tls-only&httpsPort=9443',
  'serviceName=sni-svc&aclName=sni-acl&reqMode=sni&srcPort=443&port=8443&servicePath=a.example.com,b.example.com&pathType=req_ssl_sni -i&clitcpka=true&timeoutClient=60',
  'serviceName=sni-dom&reqMode=sni&srcPort=443&port=9443&serviceDomain=c.example.com',
  'serviceName=db-a&reqMode=tcp&srcPort=5000&port=5432&serviceGroup=db&balanceGroup=leastconn&checkTcp=true&clitcpka=true&timeoutServer=30&backendExtra=option tcplog',
  'serviceName=db-b&reqMode=tcp&srcPort=5000&port=5433&serviceGroup=db&outboundHostname=10.0.0.9',
  'serviceName=plain-tcp&reqMode=tcp&srcPort=4000&port=4000',
  'serviceName=default&servicePath.1=/d1&port.1=7011&servicePath.2=/d2&port.2=7012&isDefaultBackend=true',
  'serviceName=custom&servicePath=/custom&port=7013&outboundHostname=127.0.0.1&templateFePath=custom-fe.hbs&templateBePath=custom-be.hbs&userDef=hello&userDef.1=x',
  'serviceName=meta&servicePath=/meta&port=7014&proxyInstanceName=edge&serviceColor=blue&userDef=anything',
] as const

t.test('issue-3 parameters render as the golden file, and haproxy accepts it', async (t) => {
  const text = render(state(...services), settings)
  t.equal(text, golden('params', text))
  t.same(await haproxyVerdict(state(...services), settings), { ok: true })
})

t.test('serviceHeader on several destinations declares every ACL it uses (D4)', async (t) => {
  const text = render(state(services[0]), settings)
  const declared = new Set([...text.matchAll(/^ {4}acl (hdr_\S+)/gm)].map((m) => m[1]))
  const used = [...text.matchAll(/^ {4}use_backend .*$/gm)].flatMap((m) => m[0].split(' ').filter((w) => w.startsWith('hdr_')))
  t.same([...declared].sort(), ['hdr_headers7001_0', 'hdr_headers7001_1', 'hdr_headers7001_2'])
  t.ok(used.every((name) => declared.has(name)), 'no use_backend names an undeclared ACL')
  t.match(text, 'use_backend headers-be7001_1 if url_headers7001_1 hdr_headers7001_0 hdr_headers7001_1\n')
  t.match(text, 'use_backend headers-be7001_2 if url_headers7001_2 hdr_headers7001_2\n')
  t.match(text, 'acl hdr_headers7001_0 hdr(X-Api) beta\n    acl hdr_headers7001_1 hdr(X-Version) 2\n', 'keys sorted')
})

t.test('compression is in the service backend, not in frontend services (D9)', async (t) => {
  const text = render(state(services[5], 'serviceName=other&servicePath=/other&port=1'), settings)
  const frontend = text.slice(text.indexOf('frontend services'), text.indexOf('\nbackend '))
  t.notMatch(frontend, 'compression')
  t.match(text, /backend zipped-be7006_0\n(    .*\n)*    compression algo gzip\n    compression type text\/html application\/json\n/)
  const other = text.slice(text.indexOf('\nbackend other-be1_0\n'), text.indexOf('\nbackend zipped'))
  t.match(other, 'server other other:1')
  t.notMatch(other, 'compression', 'the other service is not compressed')
})

t.test('isDefaultBackend on several destinations writes one default_backend (D9)', async (t) => {
  const text = render(state(services[17]), settings)
  t.equal([...text.matchAll(/default_backend/g)].length, 1)
  t.match(text, 'default_backend default-be7011_1')
})

t.test('SNI use_backend names the backend by aclName, and 443 is bound once (D2, D12)', async (t) => {
  const text = render(state(services[12], 'serviceName=web&servicePath=/&port=80'), settings)
  t.match(text, 'use_backend sni-acl-be8443_0 if sni_sni-acl8443-1 srcPort_sni-acl443_0')
  t.match(text, '\nbackend sni-acl-be8443_0\n')
  t.equal([...text.matchAll(/bind \*:443\b/g)].length, 1)
  t.match(text, '# 443:ssl is not bound: frontend service_443 binds its port')
})

t.test('TCP group: no backend for members, backendExtra inside the listen section (D11)', async (t) => {
  const text = render(state(services[14], services[15]), settings)
  t.notMatch(text, /\nbackend db-/)
  t.match(text, /listen tcpListen_db_5000\n(    .*\n)*    server db-db-a5432_0 db-a:5432 check resolvers docker\n    server db-db-b5433_0 10.0.0.9:5433\n    option tcplog\n/)
})

t.test('TCP, SNI and group sections are sorted (D7)', async (t) => {
  const text = render(state('serviceName=z&reqMode=sni&srcPort=9001&port=1&servicePath=z.io', 'serviceName=a&reqMode=sni&srcPort=8001&port=1&servicePath=a.io', 'serviceName=g2&reqMode=tcp&srcPort=7001&port=1&serviceGroup=zz', 'serviceName=g1&reqMode=tcp&srcPort=7002&port=1&serviceGroup=aa'), settings)
  t.same([...text.matchAll(/^(?:frontend service_|listen tcpListen_)(\S+)/gm)].map((m) => m[1]), ['8001', '9001', 'aa_7002', 'zz_7001'])
})

t.test('a wildcard domain renders the same on every regeneration (D1)', async (t) => {
  const query = 'serviceName=wild&serviceDomain=*.example.org&port=80'
  const first = render(state(query), settings)
  t.match(first, 'acl domain_wild80_0 hdr_end(host) -i .example.org')
  t.equal(render(state(query, 'serviceName=other&servicePath=/o&port=1'), settings).includes('acl domain_wild80_0 hdr_end(host) -i .example.org'), true)
})

t.test('custom templates: data, no escaping, no second pass, inside frontend services (D5, D6, D10)', async (t) => {
  const text = render(state(services[18], 'serviceName=t&reqMode=tcp&srcPort=4000&port=4000'), settings)
  const frontend = text.slice(text.indexOf('frontend services'), text.indexOf('frontend tcpFE_4000'))
  t.match(frontend, '    acl url_custom7013 path_beg /custom\n    use_backend custom-be if url_custom7013\n', 'custom frontend rules are in frontend services')
  t.notMatch(text, 'custom-be7013_0', 'the generated rules and backend are replaced')
  t.match(text, 'backend custom-be\n    mode http\n    server custom 127.0.0.1:7013 # hello hello\n')
  writeFileSync(join(templatesDir, 'odd.hbs'), '    http-request set-header X-Odd "{{userDef}}"\n')
  const odd = parse(`serviceName=odd&servicePath=/o&port=1&templateFePath=odd.hbs&userDef=${encodeURIComponent("<a&b>'{{x}}'")}`)
  t.equal(odd.customFrontend, `    http-request set-header X-Odd "<a&b>'{{x}}'"\n`)
})

t.test('custom template paths outside TEMPLATES_DIR are refused', async (t) => {
  const outside = mkdtempSync(join(tmpdir(), 'dfp-outside-'))
  t.teardown(() => rmSync(outside, { recursive: true, force: true }))
  writeFileSync(join(outside, 'evil.hbs'), 'x')
  mkdirSync(join(templatesDir, 'sub'), { recursive: true })
  symlinkSync(join(outside, 'evil.hbs'), join(templatesDir, 'sub', 'link.hbs'))
  for (const path of ['../x.hbs', join(outside, 'evil.hbs'), 'sub/link.hbs', '/etc/passwd']) {
    t.same(failure(`serviceName=s&servicePath=/s&port=1&templateFePath=${encodeURIComponent(path)}`), { status: 400, message: `templateFePath: ${JSON.stringify(path)} is outside TEMPLATES_DIR` }, path)
  }
  t.same(failure('serviceName=s&servicePath=/s&port=1&templateBePath=missing.hbs'), { status: 400, message: 'templateBePath: no file "missing.hbs" in TEMPLATES_DIR' })
  writeFileSync(join(templatesDir, 'broken.hbs'), '{{#each}}')
  t.match(failure('serviceName=s&servicePath=/s&port=1&templateFePath=broken.hbs'), { status: 400, message: /^templateFePath: the template does not render/ })
})

t.test('bad values of the new parameters are refused with 400 naming them', async (t) => {
  const base = 'serviceName=s&servicePath=/s&port=1'
  const cases: Array<[string, RegExp]> = [
    [`${base}&redirectFromDomain=old.io`, /^redirectFromDomain: needs serviceDomain/],
    [`${base}&serviceHeader=X-Only`, /^serviceHeader: "X-Only" must be "Header:value"/],
    [`${base}&serviceHeader=X-A:1,X-A:2`, /^serviceHeader: X-A is given twice/],
    [`${base}&serviceHeader.1=X:a b&servicePath.1=/x`, /^serviceHeader\.1: the value of X must not contain spaces/],
    [`${base}&userAgent=Mozilla 5`, /^userAgent: items must not contain spaces/],
    [`${base}&sessionType=sticky`, /^sessionType: must be sticky-server/],
    [`${base}&compressionAlgo=brotli`, /^compressionAlgo: must be identity, gzip, deflate or raw-deflate/],
    [`${base}&compressionType=text/html`, /^compressionType: needs compressionAlgo/],
    [`${base}&compressionAlgo=gzip&compressionType=html`, /^compressionType: must be MIME types/],
    [`${base}&discoveryType=consul`, /^discoveryType: must be DNS/],
    [`${base}&replicas=x`, /^replicas: must be a whole number/],
    [`${base}&httpsPort=0`, /^httpsPort: must be between 1 and 65535/],
    [`${base}&srcHttpsPort=abc`, /^srcHttpsPort: must be a port number/],
    [`${base}&reqMode=udp`, /^reqMode: must be http, tcp or sni/],
    [`${base}&serviceGroup=g`, /^serviceGroup: applies to reqMode tcp only/],
    ['serviceName=s&reqMode=tcp&srcPort=1&port=1&serviceGroup=a b', /^serviceGroup: must start with a letter/],
    ['serviceName=s&reqMode=tcp&srcPort=1&port=1&serviceGroup=g&balanceGroup=round robin', /^balanceGroup: must be an HAProxy balance algorithm/],
    ['serviceName=s&reqMode=sni&srcPort=1&port=1&servicePath=a.io&httpsPort=2', /^httpsPort: applies to reqMode http only/],
    ['serviceName=s&reqMode=tcp&srcPort=1&port=1&serviceDomain=a.io&redirectFromDomain=b.io', /^redirectFromDomain: applies to reqMode http only/],
    ['serviceName=s&reqMode=sni&srcPort=1&port=1', /^servicePath: reqMode sni needs the server names to match/],
    [`${base}&verifyClientSsl=maybe`, /^verifyClientSsl: must be true or false/],
    [`${base}&checkResolvers=2`, /^checkResolvers: must be true or false/],
    [`${base}&proxyInstanceName=a b`, /^proxyInstanceName: must not contain spaces/],
  ]
  for (const [query, message] of cases) t.match(failure(query), { status: 400, message }, query)
})

t.test('stored fields: proxyInstanceName, userDef, httpsPort defaults; serviceColor names the servers (blue-green)', async (t) => {
  const meta = parse(services[19])
  t.equal(meta.proxyInstanceName, 'edge')
  t.equal(meta.userDef, 'anything')
  t.equal(meta.serviceColor, 'blue')
  t.match(render(state(services[19]), settings), '    server meta meta-blue:7014 init-addr last,libc,none resolvers docker\n')
  const both = parse('serviceName=b&servicePath=/b&httpsPort.1=8443&port.1=80')
  t.match(both.destinations[0], { httpsPort: 8443, srcPort: 80, srcHttpsPort: 443 })
  t.equal(parse('serviceName=h&servicePath.1=/h&httpsPort.1=9443').destinations.length, 1, 'httpsPort.N alone creates destination N')
})

t.test('checkResolvers adds health checks per service, whatever the others do (D8)', async (t) => {
  const text = render(state('serviceName=checked&servicePath=/c&port=1&checkResolvers=true', 'serviceName=unchecked&servicePath=/u&port=2', 'serviceName=ip&servicePath=/i&port=3&checkResolvers=true&outboundHostname=10.0.0.1'), settings)
  t.match(text, '    server checked checked:1 check resolvers docker\n')
  t.match(text, '    server unchecked unchecked:2 resolvers docker\n')
  t.match(text, '    server ip 10.0.0.1:3 check\n')
})
