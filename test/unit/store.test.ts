import { appendFile, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pino } from 'pino'
import t from 'tap'
import { parseChange } from '../../src/service/params.js'
import { type Change, ServiceState } from '../../src/state/registry.js'
import { StateStore } from '../../src/state/store.js'

const log = pino({ level: 'silent' })
const parse = (params: Record<string, string>) => parseChange(params, { separator: ',' })
const put = (name: string, path = `/${name}`): Change => {
  const params = { serviceName: name, servicePath: path, port: '80' }
  const change = parse(params)
  if (change.kind !== 'put') throw new Error(`${name} parsed as a removal`)
  return { ...change, params }
}
const namesAndPaths = (changes: Change[]) =>
  changes.flatMap((c) => (c.kind === 'put' ? [`${c.service.serviceName}:${c.service.destinations[0]?.servicePath.join(',')}:${c.source}`] : []))

const folder = async (t: { teardown: (fn: () => Promise<void>) => void }) => {
  const dir = await mkdtemp(join(tmpdir(), 'dfp-store-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  return dir
}

t.test('a format 1 file (the whole state in dfp-state.json) still loads', async (t) => {
  const dir = await folder(t)
  const services = [{ source: 'listener', params: { serviceName: 'old', servicePath: '/old', port: '80' } }]
  await writeFile(join(dir, 'dfp-state.json'), JSON.stringify({ format: 1, services }))
  t.same(namesAndPaths(await new StateStore(dir, log).load(parse)), ['old:/old:listener'])
})

t.test('saves after the first append what changed; a new store loads snapshot plus log', async (t) => {
  const dir = await folder(t)
  const store = new StateStore(dir, log)
  let state = ServiceState.empty().with([put('a'), put('b'), put('c')])
  await store.save(state)
  const snapshot = await readFile(store.path, 'utf8')
  state = state.with([put('b', '/b2'), { kind: 'remove', serviceName: 'c' }, put('d')])
  await store.save(state)
  t.equal(await readFile(store.path, 'utf8'), snapshot, 'the snapshot is not rewritten')
  const logLines = (await readFile(store.logPath, 'utf8')).trim().split('\n')
  t.equal(logLines.length, 4, 'the header and one line per changed service')
  await store.save(state)
  t.equal((await readFile(store.logPath, 'utf8')).trim().split('\n').length, 4, 'nothing changed: nothing appended')
  t.same(namesAndPaths(await new StateStore(dir, log).load(parse)), ['a:/a:api', 'b:/b2:api', 'd:/d:api'])
})

t.test('a torn last line is skipped; a log of an older generation is ignored', async (t) => {
  const dir = await folder(t)
  const store = new StateStore(dir, log)
  let state = ServiceState.empty().with([put('a')])
  await store.save(state)
  state = state.with([put('b')])
  await store.save(state)
  await appendFile(store.logPath, '{"put":{"source":"api","params":{"serviceName":"c"')
  t.same(namesAndPaths(await new StateStore(dir, log).load(parse)), ['a:/a:api', 'b:/b:api'], 'the cut line is skipped')
  const snapshot = JSON.parse(await readFile(store.path, 'utf8'))
  await writeFile(store.path, JSON.stringify({ ...snapshot, generation: snapshot.generation + 1 }))
  t.same(namesAndPaths(await new StateStore(dir, log).load(parse)), ['a:/a:api'], 'the log of the previous generation is part of the snapshot')
})

t.test('the log is folded into a new snapshot once it outgrows it', async (t) => {
  const dir = await folder(t)
  const store = new StateStore(dir, log)
  let state = ServiceState.empty().with([put('base')])
  await store.save(state)
  const first = JSON.parse(await readFile(store.path, 'utf8')).generation
  for (let i = 0; i < 300; i++) {
    state = state.with([put(`s${i}`)])
    await store.save(state)
  }
  const saved = JSON.parse(await readFile(store.path, 'utf8'))
  t.equal(saved.generation, first + 1, 'compacted once')
  t.ok((await readFile(store.logPath, 'utf8')).split('\n').length < 300, 'the log was restarted')
  t.equal((await new StateStore(dir, log).load(parse)).length, 301, 'nothing lost')
})

t.test('a snapshot of the same parser is loaded without parsing again, and reads as parsing does', async (t) => {
  const dir = await folder(t)
  const queries = [
    'serviceName=a&servicePath=/a&port=80',
    'serviceName=b&servicePath=/b,/b2&port=8080&serviceDomain=b.example.com&timeoutServer=30&setReqHeader=X-A%20one',
    'serviceName=c&servicePath=/c&port=80&reqMode=tcp&srcPort=31000',
    'serviceName=d&servicePath.1=/d&port.1=80&servicePath.2=/d2&port.2=81&users=u1:p1,u2:p2&weight=20',
  ]
  const changes = queries.map((query) => {
    const params = Object.fromEntries(new URLSearchParams(query))
    const change = parse(params)
    if (change.kind !== 'put') throw new Error('a removal')
    return { ...change, params }
  })
  let calls = 0
  const counting = (params: Record<string, string>) => {
    calls++
    return parse(params)
  }
  const first = new StateStore(dir, log, 'parser-1')
  const state = ServiceState.empty().with(changes)
  await first.save(state)
  // A change after the snapshot is a log line: parsed again.
  const later = parse({ serviceName: 'e', servicePath: '/e', port: '80' })
  if (later.kind !== 'put') throw new Error('a removal')
  await first.save(state.with([{ ...later, params: { serviceName: 'e', servicePath: '/e', port: '80' } }]))

  const loaded = await new StateStore(dir, log, 'parser-1').load(counting)
  t.equal(calls, 1, 'only the log line was parsed')
  const byName = (list: Change[]) => Object.fromEntries(list.flatMap((c) => (c.kind === 'put' ? [[c.service.serviceName, c.service]] : [])))
  const expected = byName([...changes, later])
  t.same(byName(loaded), expected, 'the services read as parsing gives them')
  t.same(JSON.parse(JSON.stringify(byName(loaded))), JSON.parse(JSON.stringify(expected)), 'to the byte')

  calls = 0
  await new StateStore(dir, log, 'parser-2').load(counting)
  t.equal(calls, 5, 'another parser (code or settings): every service parsed again')
  calls = 0
  await new StateStore(dir, log).load(counting)
  t.equal(calls, 5, 'no fingerprint: every service parsed')
})

t.test('a service whose parse reads files (templates, usersSecret) is always parsed again', async (t) => {
  const dir = await folder(t)
  const params = { serviceName: 'tpl', servicePath: '/tpl', port: '80', usersSecret: 'team' }
  const service = parse({ serviceName: 'tpl', servicePath: '/tpl', port: '80' })
  if (service.kind !== 'put') throw new Error('a removal')
  // Saved as if parsed: the secret's file may have changed since.
  await new StateStore(dir, log, 'p').save(ServiceState.empty().with([{ ...service, params }]))
  let calls = 0
  await new StateStore(dir, log, 'p').load((p) => {
    calls++
    return parse({ ...p, usersSecret: '' })
  })
  t.equal(calls, 1)
})

t.test('a start on a snapshot of another parser writes it anew, once, so the next start reuses it', async (t) => {
  const dir = await folder(t)
  const older = new StateStore(dir, log)
  const state = ServiceState.empty().with([put('a'), put('b')])
  await older.save(state)
  let calls = 0
  const counting = (params: Record<string, string>) => {
    calls++
    return parse(params)
  }
  const upgraded = new StateStore(dir, log, 'new-parser')
  const loaded = await upgraded.load(counting)
  t.equal(calls, 2, 'parsed: the snapshot has no parser')
  const before = await readFile(upgraded.path, 'utf8')
  await upgraded.refreshSnapshot(ServiceState.empty().with(loaded))
  t.not(await readFile(upgraded.path, 'utf8'), before, 'rewritten')
  calls = 0
  t.same(namesAndPaths(await new StateStore(dir, log, 'new-parser').load(counting)), ['a:/a:api', 'b:/b:api'])
  t.equal(calls, 0, 'the next start parses nothing')
  const same = new StateStore(dir, log, 'new-parser')
  await same.load(counting)
  const text = await readFile(same.path, 'utf8')
  await same.refreshSnapshot(ServiceState.empty().with(loaded))
  t.equal(await readFile(same.path, 'utf8'), text, 'a snapshot of the same parser is not rewritten')
})
