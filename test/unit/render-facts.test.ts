import t from 'tap'
import { configVersion, renderAll } from '../../src/render/index.js'
import { parseService } from '../../src/service/params.js'
import { loadSettings } from '../../src/settings.js'
import { ServiceState } from '../../src/state/registry.js'

// What renderAll returns besides the text, so nobody outside render/ reads the text back.

const settings = loadSettings({ CONFIG_DIR: '/cfg', ERRORFILES_DIR: '/errorfiles', SECRETS_DIR: '/nonexistent', DEFAULT_PORTS: '80,443:ssl' })
const put = (q: string) => ({ kind: 'put' as const, service: parseService(new URLSearchParams(q), { separator: ',' }) })
const state = ServiceState.empty().with([
  put('serviceName=web&servicePath=/web&port=8080&outboundHostname=10.0.0.7'),
  put('serviceName=named&servicePath=/named&port=81'),
  put('serviceName=db&reqMode=tcp&srcPort=5432&port=5432'),
  put('serviceName=dns&servicePath=/dns&port=82&discoveryType=DNS&replicas=3'),
])

t.test('the version is returned, and is the one the description line names', async (t) => {
  const rendered = renderAll(state, settings)
  t.match(rendered.version, /^dfp-[0-9a-f]{16}$/)
  t.equal(configVersion(rendered.config), rendered.version)
  t.not(renderAll(ServiceState.empty(), settings).version, rendered.version)
})

t.test('servers per backend, with address and port', async (t) => {
  const { backends } = renderAll(state, settings)
  t.same(backends.get('web')?.servers, [{ backend: 'web-be8080_0', name: 'web', host: '10.0.0.7', port: '8080', template: false }])
  t.same(backends.get('named')?.servers, [{ backend: 'named-be81_0', name: 'named', host: 'named', port: '81', template: false }])
  t.same(backends.get('dns')?.servers, [{ backend: 'dns-be82_0', name: 'dns', host: 'dns', port: '82', template: true }])
  t.ok(backends.get('web')?.text.includes('server web 10.0.0.7:8080'))
  t.notOk(backends.get('web')?.shape.includes('10.0.0.7'), 'the shape leaves the IP literal out')
  t.equal(backends.get('named')?.shape, backends.get('named')?.text, 'a host name is part of the shape')
})

t.test('the ports each section binds', async (t) => {
  const { ports } = renderAll(state, settings)
  t.same([...ports].sort(([a], [b]) => a - b), [[80, 'frontend services'], [5432, 'frontend tcpFE_5432']], '443:ssl stays unbound without a certificate')
})

t.test('the validation variant: no name lookups or server state, the candidate\'s map files; nothing else differs', async (t) => {
  const live = renderAll(state, settings)
  const check = renderAll(state, settings, { validation: { mapPaths: { hostPath: '/cfg/candidate-1-host-path.map', path: '/cfg/candidate-1-path.map' } } })
  t.match(live.config, '    load-server-state-from-file global\n    default-server init-addr last,none\n')
  t.match(check.config, '    load-server-state-from-file none\n    default-server init-addr none\n')
  t.match(check.config, 'map_beg(/cfg/candidate-1-path.map)')
  t.notMatch(check.config, '/cfg/maps/')
  const normalize = (text: string) =>
    text
      .replace(/description \S+/, '')
      .replace('init-addr none', 'init-addr last,none')
      .replace('load-server-state-from-file none', 'load-server-state-from-file global')
      .replaceAll('/cfg/candidate-1-host-path.map', '/cfg/maps/host-path.map')
      .replaceAll('/cfg/candidate-1-path.map', '/cfg/maps/path.map')
  t.equal(normalize(check.config), normalize(live.config))
  t.same(check.maps, live.maps)
})
