// test/ is type-checked as src/ is (tsconfig.test.json: strict, noEmit): `npm test` fails on a
// type error in a test or a helper, with tsc's diagnostics, as `npm run typecheck` does.
import { spawnSync } from 'node:child_process'
import { join } from 'node:path'
import t from 'tap'

const root = join(import.meta.dirname, '..', '..')
const tscBin = join(root, 'node_modules', 'typescript', 'bin', 'tsc')

t.test('src/ and test/ type-check (tsc -p tsconfig.test.json)', async (t) => {
  const result = spawnSync(process.execPath, [tscBin, '-p', join(root, 'tsconfig.test.json')], { cwd: root, encoding: 'utf8', timeout: 240_000 })
  t.equal(result.error, undefined, 'tsc ran')
  t.equal(result.status, 0, `no type error${result.stdout ? `:\n${result.stdout}` : ''}${result.stderr}`)
})
