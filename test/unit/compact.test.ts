import t from 'tap'
import { compact } from '../../src/compact.js'
import { parseChange } from '../../src/service/params.js'

t.test('empty lists become one shared frozen array; the rest is kept', async (t) => {
  const value = compact({ a: [], b: [[], ['x']], c: { d: [] }, e: 'text', f: [1, 2] })
  t.equal(value.a, value.c.d, 'one array for every empty list')
  t.equal(value.b[0], value.a)
  t.same(value.b[1], ['x'])
  t.same(value.f, [1, 2])
  t.equal(value.e, 'text')
  t.ok(Object.isFrozen(value.a))
  t.throws(() => (value.a as unknown as string[]).push('y'), TypeError, 'pushing into it fails loudly')
})

t.test('a parsed service shares its empty lists and has no undefined fields', async (t) => {
  const a = parseChange({ serviceName: 'a', servicePath: '/a', port: '80' }, { separator: ',' })
  const b = parseChange({ serviceName: 'b', servicePath: '/b', port: '80' }, { separator: ',' })
  if (a.kind !== 'put' || b.kind !== 'put') throw new Error('not a put')
  t.equal(a.service.destinations[0]?.serviceDomain, b.service.destinations[0]?.serviceDomain, 'the same empty array')
  t.same(Object.entries(a.service).filter(([, v]) => v === undefined), [], 'no key holds undefined')
  t.same(a.service.destinations[0]?.servicePath, ['/a'])
})
