// Issue 21: the line model of src/haproxy-text.ts against HAProxy's own parse_line. Generated
// lines (quotes, escapes, `#`, `$`, blanks, non-ASCII) are read by the model and by the real
// haproxy: where the model sees an error (an open quote, a bad \x), `haproxy -c` must refuse the
// line; where it reads words, the same bytes written back through configWord must give the header
// HAProxy gives for the raw line. `%` is left out: after parse_line a header value is log-format,
// which is not what this test is about (values-differential.test.ts covers it).
import { execFile, spawn } from 'node:child_process'
import { once } from 'node:events'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import fc from 'fast-check'
import t from 'tap'
import { configWord, parseConfigLine } from '../../src/haproxy-text.js'
import { freePort, httpGet, until } from '../helpers/net.js'

const CASES = Number(process.env.LINE_CASES ?? 120)
const run = promisify(execFile)
const pieces = ['"', "'", '\\', '\\x41', '\\x4', '\\xzz', '\\r', '\\n', '\\t', '\\"', "\\'", '\\#', '\\\\', '\\ ', '\\$', '#', '$', '${', 'a', 'Z', ' ', 'ü', '(', ')', ':', '{', '}']
const tail = fc.array(fc.constantFrom(...pieces), { minLength: 1, maxLength: 8 }).map((parts) => `x${parts.join('')}`)

const dir = await mkdtemp(join(tmpdir(), 'dfp-line-model-'))
t.teardown(() => rm(dir, { recursive: true, force: true }))
const head = ['defaults', '    mode http', '    timeout connect 1s', '    timeout client 5s', '    timeout server 5s']
const frontend = (port: number, lines: string[]) => [...head, 'frontend f', `    bind 127.0.0.1:${port}`, ...lines, ''].join('\n')
/** Whether `haproxy -c` accepts a frontend answering with a header from `line`'s words. */
async function accepted(line: string): Promise<boolean> {
  const file = join(dir, 'check.cfg')
  await writeFile(file, frontend(1, [`    http-request return status 200 hdr X-T ${line}`]))
  return run('haproxy', ['-c', '-q', '-f', file]).then(() => true, () => false)
}

t.test(`${CASES} generated lines: the model reads what HAProxy reads`, async (t) => {
  const samples = fc.sample(tail, { numRuns: CASES, seed: 21 })
  const mismatches: string[] = []
  const served: Array<{ raw: string; model: string }> = []
  for (const raw of samples) {
    const parsed = parseConfigLine(`hdr X-T ${raw}`)
    if (parsed.readsEnvironment) continue
    const ok = await accepted(raw)
    const oneWord = parsed.error === undefined && parsed.words.length === 3
    if (parsed.error !== undefined || parsed.words.length !== 3) {
      // the model sees an error, or more than one word where HAProxy wants one: -c must refuse it
      // (extra words are an unknown argument of `return`), unless they were only a comment
      if (ok && parsed.error !== undefined) mismatches.push(`${JSON.stringify(raw)}: the model refuses (${parsed.error}) but HAProxy accepts`)
      continue
    }
    if (!ok) {
      if (!/[\r\n\0]/.test(parsed.words[2] ?? '')) mismatches.push(`${JSON.stringify(raw)}: the model reads ${JSON.stringify(parsed.words[2])} but HAProxy refuses`)
      continue
    }
    if (oneWord && !/[\r\n\0]/.test(parsed.words[2] ?? '')) served.push({ raw, model: configWord(parsed.words[2] as string) })
  }
  // one load: path /r<i> answers with the raw line's header, /m<i> with the model's words written back
  const port = await freePort()
  // each raw line ends its line (a backslash at the end means something else than before a blank)
  const routes = served.flatMap((_, i) => [`    use_backend r${i} if { path /r${i} }`, `    use_backend m${i} if { path /m${i} }`])
  const backends = served.flatMap(({ raw, model }, i) => [`backend r${i}`, `    http-request return status 200 hdr X-T ${raw}`, `backend m${i}`, `    http-request return status 200 hdr X-T ${model}`])
  const file = join(dir, 'haproxy.cfg')
  await writeFile(file, `${frontend(port, routes)}${backends.join('\n')}\n`)
  const child = spawn('haproxy', ['-db', '-f', file], { stdio: 'ignore' })
  t.teardown(async () => {
    if (child.exitCode === null && child.signalCode === null) {
      const exited = once(child, 'exit')
      child.kill('SIGTERM')
      await exited
    }
  })
  t.ok(await until(async () => child.exitCode === null && (await httpGet(port, '/').then(() => true, () => false)), 15_000), 'haproxy loads the lines')
  for (const [i, { raw }] of served.entries()) {
    const fromRaw = (await httpGet(port, `/r${i}`)).headers['x-t']
    const fromModel = (await httpGet(port, `/m${i}`)).headers['x-t']
    if (fromRaw !== fromModel) mismatches.push(`${JSON.stringify(raw)}: HAProxy reads ${JSON.stringify(fromRaw)}, the model ${JSON.stringify(fromModel)}`)
  }
  t.comment(`lines ${samples.length}, compared through a request ${served.length}`)
  t.ok(served.length > CASES / 5, 'enough lines reach the comparison')
  t.same(mismatches, [], 'no line the model reads differently from HAProxy')
})
