import { sendCommand } from './runtime.js'

/** One line of HAProxy's statistics CSV, by column name (`pxname`, `svname`, `status`, …). */
export type StatRow = Record<string, string>

/** Row types of the CSV's `type` column (management.txt §9.1). */
export const statType = { frontend: '0', backend: '1', server: '2', listener: '3' } as const

/**
 * `show stat` of the running worker: the same CSV the stats page serves at `<uri>;csv`
 * (first line `# pxname,svname,…`), which the original's `/v1/docker-flow-proxy/metrics` proxied.
 */
export async function showStat(statsSocket: string, timeoutMs = 5000): Promise<string> {
  const csv = await sendCommand(statsSocket, 'show stat', timeoutMs)
  if (!csv.startsWith('# pxname,')) throw new Error(`unexpected answer to "show stat": ${csv.slice(0, 200).trim()}`)
  return csv
}

/** Parses the CSV of `show stat`. HAProxy never quotes its fields, so a split on commas is exact. */
export function parseStats(csv: string): StatRow[] {
  const [header = '', ...lines] = csv.split('\n')
  const columns = header.replace(/^# /, '').split(',')
  return lines
    .filter((line) => line.trim() !== '')
    .map((line) => {
      const values = line.split(',')
      const row: StatRow = {}
      columns.forEach((name, i) => {
        if (name !== '') row[name] = values[i] ?? ''
      })
      return row
    })
}
