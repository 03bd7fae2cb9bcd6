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

// `show stat <proxy> <types> <sid>` (management.txt 9.3): types is a bitfield, 2 = backends,
// 4 = servers. Several commands share one connection, separated by `;`, on lines under 8 kB.
const BACKENDS_AND_SERVERS = 6
const MAX_LINE = 8000

/**
 * The statistics rows (backend and servers) of the named backends only, so a page of 50
 * services costs 50 small answers instead of the CSV of every proxy. Names HAProxy does not
 * know give no row.
 */
export async function showStatOf(statsSocket: string, backends: readonly string[], timeoutMs = 5000): Promise<StatRow[]> {
  const lines: string[] = []
  let line = ''
  for (const name of backends) {
    const command = `show stat ${name} ${BACKENDS_AND_SERVERS} -1`
    if (line !== '' && line.length + command.length + 1 > MAX_LINE) {
      lines.push(line)
      line = ''
    }
    line = line === '' ? command : `${line};${command}`
  }
  if (line !== '') lines.push(line)
  const rows: StatRow[] = []
  for (const commands of lines) {
    const answer = await sendCommand(statsSocket, commands, timeoutMs)
    // Each command answers with its own header line; unknown proxies answer with an error line.
    for (const block of answer.split(/^(?=# pxname,)/m)) if (block.startsWith('# pxname,')) rows.push(...parseStats(block))
  }
  return rows
}
