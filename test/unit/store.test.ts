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
