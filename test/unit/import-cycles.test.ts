import { spawnSync } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t, { type Test } from 'tap'

const root = join(import.meta.dirname, '..', '..')
const madgeBin = join(root, 'node_modules', 'madge', 'bin', 'cli.js')

/** The import cycles madge finds under `dir` (type-only imports count too), as module paths. */
function cyclesIn(t: Test, dir: string): string[][] {
  const result = spawnSync(process.execPath, [madgeBin, '--circular', '--json', '--extensions', 'ts', '--ts-config', join(root, 'tsconfig.json'), dir], {
    cwd: root,
    encoding: 'utf8',
    timeout: 60_000,
  })
  // madge exits 1 when it finds cycles, with anything else when it could not read the sources.
  t.ok(result.status === 0 || result.status === 1, `madge ran${result.stderr ? `: ${result.stderr}` : ''}`)
  return JSON.parse(result.stdout) as string[][]
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
