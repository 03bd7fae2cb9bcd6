// The chaos soak (test/chaos/soak.ts, `npm run chaos` for the long one), short and seeded, in
// `npm test`: 45 s of changes from three clients under kill -9 of the worker, the master and the
// daemon, a filled disk and a slow or killed `haproxy -c`; no answer may contradict what is
// served and saved, and the steady service fails only within the restart windows.
import t from 'tap'
import { runSoak } from './soak.js'

t.test('a short seeded chaos soak finds no violation', async (t) => {
  const report = await runSoak({ seconds: 45, seed: 4, say: (line) => t.comment(line) })
  t.comment(JSON.stringify({ faults: report.faults, requests: report.requests, reasons: report.reasons, probes: report.probes }))
  const injected = Object.values(report.faults).reduce((sum, count) => sum + count, 0)
  t.ok(injected >= 3, `faults were injected (${injected})`)
  t.ok((report.requests.reconfigure?.['200'] ?? 0) > 0, 'changes were applied between the faults')
  t.ok(report.probes.total > 0, 'the steady service was requested all along')
  t.same(report.violations, [], 'no violation')
})
