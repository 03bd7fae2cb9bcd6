// `npm run chaos [-- --minutes N --seed S]` (or CHAOS_MINUTES, CHAOS_SEED): the chaos soak,
// 5 minutes by default; prints its figures as JSON and exits 1 on a violation.
import { runSoak } from './soak.js'

const arg = (name: string) => {
  const index = process.argv.indexOf(`--${name}`)
  return index >= 0 ? process.argv[index + 1] : undefined
}
const minutes = Number(arg('minutes') ?? process.env.CHAOS_MINUTES ?? 5)
const seed = Number(arg('seed') ?? process.env.CHAOS_SEED ?? 20)
if (!(minutes > 0 && minutes <= 120) || !Number.isSafeInteger(seed)) {
  process.stderr.write('chaos: --minutes must be in (0, 120] and --seed an integer\n')
  process.exit(2)
}
const report = await runSoak({ seconds: Math.round(minutes * 60), seed, say: (line) => process.stderr.write(`chaos: ${line}\n`) })
process.stdout.write(`${JSON.stringify(report, null, 1)}\n`)
process.exit(report.violations.length > 0 ? 1 : 0)
