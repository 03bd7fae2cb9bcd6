import { spawnSync } from 'node:child_process'
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t, { type Test } from 'tap'

const root = join(import.meta.dirname, '..', '..')
const madgeBin = join(root, 'node_modules', 'madge', 'bin', 'cli.js')

/** madge's JSON answer under `dir` (type-only imports count too), with `args` (e.g. `--circular`): its cycles or its graph. */
function madge<T extends string[][] | Record<string, string[]>>(t: Test, dir: string, args: string[]): T {
  const result = spawnSync(process.execPath, [madgeBin, ...args, '--json', '--extensions', 'ts', '--ts-config', join(root, 'tsconfig.json'), dir], {
    cwd: root,
    encoding: 'utf8',
    timeout: 60_000,
  })
  // madge exits 1 when it finds cycles, with anything else when it could not read the sources.
  t.ok(result.status === 0 || result.status === 1, `madge ran${result.stderr ? `: ${result.stderr}` : ''}`)
  return JSON.parse(result.stdout)
}

/** The import cycles madge finds under `dir`, as module paths. */
const cyclesIn = (t: Test, dir: string) => madge<string[][]>(t, dir, ['--circular'])

/** The unit a module belongs to: its folder under `dir` (`apply/core.ts` → `apply`), or itself at the top (`settings.ts` → `settings`). */
const unitOf = (path: string) => (path.includes('/') ? path.slice(0, path.indexOf('/')) : path.replace(/\.ts$/, ''))

/**
 * Dependencies between units (folders and top-level files) that go both ways, directly or
 * through other units: each group of units that reach each other, sorted, with the imports
 * that tie them (`from → to`). Empty when dependencies between folders run one way.
 */
function folderCyclesIn(t: Test, dir: string): Array<{ units: string[]; imports: string[] }> {
  const graph = madge<Record<string, string[]>>(t, dir, [])
  const edges = new Map<string, Set<string>>()
  const imports = new Map<string, string[]>()
  for (const [from, targets] of Object.entries(graph)) {
    for (const to of targets) {
      const [a, b] = [unitOf(from), unitOf(to)]
      if (a === b) continue
      if (!edges.has(a)) edges.set(a, new Set())
      edges.get(a)?.add(b)
      imports.set(`${a}>${b}`, [...(imports.get(`${a}>${b}`) ?? []), `${from} → ${to}`])
    }
  }
  const reach = (start: string) => {
    const seen = new Set<string>()
    const todo = [start]
    for (let unit = todo.pop(); unit !== undefined; unit = todo.pop()) {
      for (const next of edges.get(unit) ?? []) if (!seen.has(next)) todo.push(next), seen.add(next)
    }
    return seen
  }
  const reached = new Map([...edges.keys()].map((unit) => [unit, reach(unit)]))
  const groups = new Map<string, string[]>()
  for (const [unit, from] of reached) {
    if (!from.has(unit)) continue
    const group = [...from].filter((other) => reached.get(other)?.has(unit)).sort()
    groups.set(group.join(), group)
  }
  return [...groups.values()].map((units) => ({
    units,
    imports: units.flatMap((a) => units.flatMap((b) => imports.get(`${a}>${b}`) ?? [])),
  }))
}

t.test('src/ has no import cycles', async (t) => {
  t.same(cyclesIn(t, join(root, 'src')), [], 'madge --circular finds none')
})

t.test('the check sees a cycle when there is one', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'dfp-cycle-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  writeFileSync(join(dir, 'a.ts'), "import { b } from './b.js'\nexport const a = () => b\n")
  writeFileSync(join(dir, 'b.ts'), "import type { a } from './a.js'\nexport const b = 1 as unknown as typeof a\n")
  t.same(cyclesIn(t, dir), [['a.ts', 'b.ts']])
})

t.test('dependencies between the folders of src/ run one way', async (t) => {
  t.same(folderCyclesIn(t, join(root, 'src')), [], 'no two folders (or top-level files) depend on each other, directly or around')
})

t.test('the folder check sees a two-way dependency when there is one, without a file cycle', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'dfp-folders-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  for (const folder of ['low', 'high']) mkdirSync(join(dir, folder))
  writeFileSync(join(dir, 'high', 'route.ts'), "import { value } from '../low/value.js'\nexport const route = () => value\n")
  writeFileSync(join(dir, 'high', 'shape.ts'), 'export interface Shape { size: number }\n')
  writeFileSync(join(dir, 'low', 'value.ts'), "import type { Shape } from '../high/shape.js'\nexport const value: Shape = { size: 1 }\n")
  writeFileSync(join(dir, 'top.ts'), "import { route } from './high/route.js'\nexport const top = route\n")
  t.same(cyclesIn(t, dir), [], 'no file cycle')
  t.same(folderCyclesIn(t, dir), [{ units: ['high', 'low'], imports: ['high/route.ts → low/value.ts', 'low/value.ts → high/shape.ts'] }])
})
