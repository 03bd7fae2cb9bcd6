import { readFile } from 'node:fs/promises'
import { createServer, type Server } from 'node:http'
import t from 'tap'
import { showInfo } from '../../src/haproxy/runtime.js'
import { routeMapPaths } from '../../src/render/maps.js'
import { statsSocketPath } from '../../src/render/index.js'
import { startDaemon } from '../helpers/daemon.js'
import { httpUpstream, until } from '../helpers/net.js'
import type { StatusAnswer } from '../helpers/api-json.js'
import { nameInBody, portOf } from '../helpers/checks.js'

// Map routing and runtime changes (issue 6), with a real haproxy and real upstreams.
const daemon = await startDaemon()
const upstreams = await Promise.all(['short', 'middle', 'long', 'other'].map((name) => httpUpstream(name)))
const [short, middle, long, other] = upstreams.map((u) => String(u.port)) as [string, string, string, string]
t.teardown(async () => {
  await daemon.close()
  await Promise.all(upstreams.map((u) => u.close()))
})
// The catch-up reload after a runtime removal is tested on its own, at the end.
daemon.applier.catchUpDelayMs = 3_600_000

const reconfigure = (params: Record<string, string>) => daemon.call('reconfigure', { outboundHostname: '127.0.0.1', ...params })
const upstreamOf = async (path: string, headers?: Record<string, string>) => {
  const reply = await daemon.proxy(path, headers)
  return reply.status === 200 ? nameInBody(reply.body) : reply.status
}
/** The live path map file (written once changes pause: src/apply/core.ts, `fileSync`). */
const mapFile = () => readFile(routeMapPaths(daemon.configDir).path, 'utf8')
const workerPid = async () => (await showInfo(statsSocketPath(daemon.configDir))).pid

t.test('overlapping prefixes: the longest matching prefix wins, whatever the names', async (t) => {
  // Named so that the original's alphabetical order would send everything to `a-short`.
  t.equal((await reconfigure({ serviceName: 'a-short', servicePath: '/shop', port: short })).status, 200)
  t.equal((await reconfigure({ serviceName: 'b-long', servicePath: '/shop/cart/items', port: long })).status, 200)
  t.equal((await reconfigure({ serviceName: 'c-middle', servicePath: '/shop/cart', port: middle })).status, 200)
  t.equal(await upstreamOf('/shop/cart/items/7'), 'long')
  t.equal(await upstreamOf('/shop/cart/x'), 'middle')
  t.equal(await upstreamOf('/shop/cartx'), 'middle', 'a prefix of the string, as path_beg')
  t.equal(await upstreamOf('/shop/other'), 'short')
  t.equal(await upstreamOf('/nothing'), 503)
  const config = (await daemon.call('config')).body
  t.notMatch(config, 'acl url_a-short', 'no ACL for map-routed services')
  t.match(config, 'backend c-middle-be')
  t.ok(await until(async () => (await mapFile()).includes(`/shop/cart 10:c-middle-be${middle}_0\n`)), 'the map file holds the routes once changes pause')
})

t.test('domains: the host (any case, without port) and the path; the longer path wins, then the domain', async (t) => {
  t.equal((await reconfigure({ serviceName: 'web', serviceDomain: 'example.com', servicePath: '/shop', port: other })).status, 200)
  t.equal(await upstreamOf('/shop/x', { Host: 'Example.COM:8080' }), 'other', 'same path length: the domain wins')
  t.equal(await upstreamOf('/shop/x', { Host: 'elsewhere.com' }), 'short')
  t.equal(await upstreamOf('/shop/x', { Host: 'example.com.evil.org' }), 'short', 'the whole host name must match')
  t.equal(await upstreamOf('/shop/cart/x', { Host: 'example.com' }), 'middle', 'a longer path without domain wins')
  t.equal((await reconfigure({ serviceName: 'site', serviceDomain: 'site.example', port: other })).status, 200)
  t.equal(await upstreamOf('/anything', { Host: 'site.example' }), 'other', 'a domain-only service takes every path of its domain…')
  t.equal(await upstreamOf('/shop/cart/x', { Host: 'site.example' }), 'middle', '…but the paths other services claim')
  t.equal(await upstreamOf('/anything', { Host: 'other.example' }), 503)
  t.equal((await daemon.call('remove', { serviceName: 'web' })).status, 200)
  t.equal((await daemon.call('remove', { serviceName: 'site' })).status, 200)
})

t.test('services with richer rules keep their ACLs: before the maps, except those on `/`', async (t) => {
  t.equal((await reconfigure({ serviceName: 'z-acl', servicePath: '/shop/cart', servicePathExclude: '/shop/cart/secret', port: other })).status, 200)
  t.match((await daemon.call('config')).body, 'acl url_z-acl')
  t.equal(await upstreamOf('/shop/cart/items/1'), 'other', 'the ACL block comes before the maps')
  t.equal(await upstreamOf('/shop/cart/secret'), 'middle', 'excluded by its ACL, then routed by the map')
  t.equal((await daemon.call('remove', { serviceName: 'z-acl' })).status, 200)
  t.equal((await reconfigure({ serviceName: 'catch-all', serviceDomain: '*.test', servicePath: '/', port: other })).status, 200)
  t.equal(await upstreamOf('/shop/x', { Host: 'a.test' }), 'short', 'an ACL service on `/` comes after the maps')
  t.equal(await upstreamOf('/else', { Host: 'a.test' }), 'other')
  t.equal((await daemon.call('remove', { serviceName: 'catch-all' })).status, 200)
})

t.test('the lookup follows the maps: one path lookup until a domain is mapped, both after', async (t) => {
  t.match((await daemon.call('config')).body, /use_backend %\[path,map_beg\(\S+path\.map\),field\(2,:\)\]\n/, 'path only: one lookup in use_backend')
  t.notMatch((await daemon.call('config')).body, 'host-path.map', 'and none of the host')
  const reloads = daemon.applier.reloads
  t.equal((await reconfigure({ serviceName: 'anchor', serviceDomain: 'anchor.example', servicePath: '/anchor', port: other })).status, 200)
  t.equal(daemon.applier.reloads, reloads + 1, 'the first domain entry changes the lookup: a reload')
  t.equal(await upstreamOf('/anchor/1', { Host: 'anchor.example' }), 'other')
  t.equal((await daemon.call('remove', { serviceName: 'anchor' })).status, 200)
  t.equal(daemon.applier.reloads, reloads + 1, 'removing the last one does not: the running lookup routes any maps')
  t.equal(await upstreamOf('/shop/cart/x'), 'middle')
})

t.test('path changes and removals of map-routed services need no reload', async (t) => {
  const pid = await workerPid()
  const reloads = daemon.applier.reloads
  t.equal((await reconfigure({ serviceName: 'c-middle', servicePath: '/shop/basket', port: middle })).status, 200)
  t.equal(await upstreamOf('/shop/basket/1'), 'middle', 'the new path routes at once')
  t.equal(await upstreamOf('/shop/cart/1'), 'short', 'the old one is gone')
  t.equal((await reconfigure({ serviceName: 'c-middle', servicePath: '/shop/basket', serviceDomain: 'shop.example', port: middle })).status, 200)
  t.equal(await upstreamOf('/shop/basket/1', { Host: 'shop.example' }), 'middle', 'a domain added')
  t.equal(await upstreamOf('/shop/basket/1'), 'short', 'and the route without it gone')

  const removed = await daemon.call('remove', { serviceName: 'b-long' })
  t.equal(removed.status, 200)
  t.equal(await upstreamOf('/shop/cart/items/7'), 'short', 'the removed route disappears once remove answered')
  t.notMatch((await daemon.call('config')).body, 'b-long', 'the configuration file no longer has it')
  t.ok(await until(async () => !(await mapFile()).includes('b-long')), 'nor the map file, once changes pause')
  t.equal(daemon.applier.reloads, reloads, 'no reload')
  t.equal(await workerPid(), pid, 'the same worker serves')
  const metrics = (await daemon.api('/metrics')).body
  t.match(metrics, /^dfp_runtime_changes_total\{kind="map",outcome="ok"\} [1-9]/m, '/metrics counts the runtime changes')

  t.equal((await reconfigure({ serviceName: 'b-long', servicePath: '/shop/cart/items', port: long })).status, 200)
  t.equal(await upstreamOf('/shop/cart/items/7'), 'long', 'added again')
  t.equal(daemon.applier.reloads, reloads, 'the worker still had its backend: no reload either')
  t.equal(await workerPid(), pid)

  t.equal((await reconfigure({ serviceName: 'd-new', servicePath: '/new', port: other })).status, 200)
  t.equal(await upstreamOf('/new'), 'other')
  t.equal(daemon.applier.reloads, reloads, 'a new plain service takes a spare backend: no reload')
  t.equal((await reconfigure({ serviceName: 'e-own', servicePath: '/own', port: other, timeoutServer: '9' })).status, 200)
  t.equal(await upstreamOf('/own'), 'other')
  t.equal(daemon.applier.reloads, reloads + 1, 'a backend with lines of its own needs a reload')
  t.equal((await daemon.call('remove', { serviceName: 'e-own' })).status, 200)
})

t.test('a server address change goes through the Runtime API too', async (t) => {
  // The same port on two loopback addresses, each answering with its own name.
  const listen = (host: string, port: number, name: string) =>
    new Promise<Server>((resolve, reject) => {
      const server = createServer((_req, res) => res.end(JSON.stringify({ name })))
      server.once('error', reject)
      server.listen(port, host, () => resolve(server))
    })
  const one = await listen('127.0.0.1', 0, 'one')
  const port = portOf(one)
  const two = await listen('127.0.0.2', port, 'two')
  t.teardown(async () => {
    for (const server of [one, two]) await new Promise((resolve) => server.close(resolve))
  })
  t.equal((await reconfigure({ serviceName: 'moving', servicePath: '/moving', port: String(port), outboundHostname: '127.0.0.2' })).status, 200)
  t.equal(await upstreamOf('/moving'), 'two')
  const pid = await workerPid()
  const reloads = daemon.applier.reloads
  t.equal((await reconfigure({ serviceName: 'moving', servicePath: '/moving', port: String(port), outboundHostname: '127.0.0.1' })).status, 200)
  t.equal(await upstreamOf('/moving'), 'one', 'the new address serves once reconfigure answered')
  t.match((await daemon.call('config')).body, `server moving 127.0.0.1:${port}\n`, 'the file has it')
  t.equal((await reconfigure({ serviceName: 'moving', servicePath: '/moved', port: String(port), outboundHostname: '127.0.0.2' })).status, 200)
  t.equal(await upstreamOf('/moved'), 'two', 'address and path at once')
  t.equal(daemon.applier.reloads, reloads, 'no reload')
  t.equal(await workerPid(), pid, 'the same worker serves')
  t.equal((await daemon.call('remove', { serviceName: 'moving' })).status, 200)
})

t.test('new plain services go live in spare backends; one catch-up reload gives them their own', async (t) => {
  t.equal((await daemon.call('reload')).status, 200)
  daemon.applier.catchUpDelayMs = 300
  const reloads = daemon.applier.reloads
  const pid = await workerPid()
  const names = ['f-one', 'f-two', 'f-three']
  const replies = await Promise.all(names.map((name) => reconfigure({ serviceName: name, servicePath: `/${name}`, port: other })))
  t.same(replies.map((r) => r.status), [200, 200, 200])
  for (const name of names) t.equal(await upstreamOf(`/${name}/x`), 'other', `${name} routes once answered`)
  t.equal(daemon.applier.reloads, reloads, 'without a reload')
  t.equal(await workerPid(), pid, 'the same worker serves')
  t.ok(await until(async () => /\/f-one 6:f-one-be\d+_0\n/.test(await mapFile())), 'the map file names its own backend')
  t.ok(await until(async () => daemon.applier.reloads === reloads + 1, 20_000), 'one catch-up reload for the three')
  for (const name of names) t.equal(await upstreamOf(`/${name}/x`), 'other', `${name} still routes`)
  const stats = await daemon.call<StatusAnswer>('status', { type: 'json', q: 'f-one' })
  t.equal(stats.json.services[0]?.routes[0]?.backends[0]?.status, 'UP', 'its own backend is in the worker now')
  for (const name of names) t.equal((await daemon.call('remove', { serviceName: name })).status, 200)
  daemon.applier.catchUpDelayMs = 3_600_000
})

t.test('a removal leaves the backend in the worker until one catch-up reload', async (t) => {
  // A reload frees the leftovers of the earlier removals (and cancels their hour-long timer).
  t.equal((await daemon.call('reload')).status, 200)
  daemon.applier.catchUpDelayMs = 200
  const reloads = daemon.applier.reloads
  t.equal((await daemon.call('remove', { serviceName: 'd-new' })).status, 200)
  t.equal(await upstreamOf('/new'), 503)
  t.ok(await until(async () => daemon.applier.reloads === reloads + 1, 20_000), 'one catch-up reload')
  t.equal(await upstreamOf('/new'), 503)
  t.equal(await upstreamOf('/shop/cart/items/7'), 'long', 'the other routes are unchanged')
  t.equal(await upstreamOf('/shop/basket/1', { Host: 'shop.example' }), 'middle')
})
