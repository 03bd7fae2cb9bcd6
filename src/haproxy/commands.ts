import { sendCommand } from './runtime.js'

/**
 * The Runtime API commands dfp sends to a worker (management.txt 9.3), as data until they are
 * sent. Each kind has its own check of the answer: a silent command (map changes, `enable
 * server`, `set weight`) answers with the empty line that ends every answer and nothing else; an
 * answer that is missing (no terminating line: the command line was read as the start of a
 * payload, issue 21 item 8) or says anything else is a failure, never a success.
 */
export type RuntimeCommand =
  /** A dynamic server; `host` is an IP literal (IPv6 in brackets) or a name resolved before it is sent. */
  | { kind: 'add server'; backend: string; server: string; host: string; port: string }
  | { kind: 'enable server'; backend: string; server: string }
  | { kind: 'set server addr'; backend: string; server: string; address: string }
  /** Canary weights: `set weight <backend>/<server> <n>`, 0–256. */
  | { kind: 'set weight'; backend: string; server: string; weight: number }
  /** New entries (`key value` lines) as one payload. */
  | { kind: 'add map'; file: string; entries: readonly string[] }
  | { kind: 'set map'; file: string; key: string; value: string }
  | { kind: 'del map'; file: string; key: string }
  | { kind: 'set ssl cert'; path: string; pem: string }
  | { kind: 'commit ssl cert'; path: string }
  | { kind: 'abort ssl cert'; path: string }

// What the CLI's parser would split, end or read as a payload start (`<<` at the end of a line),
// or the escape character: no argument dfp sends may hold one.
const UNSAFE_WORD = /[\s;\\#'"]|<<$/

function word(value: string, what: string): string {
  if (value === '' || UNSAFE_WORD.test(value)) throw new Error(`${what} ${JSON.stringify(value)} cannot be sent to the Runtime API (empty, or holds a space, ;, \\, a quote, # or a trailing <<)`)
  return value
}

/** The command line (and payload) as HAProxy reads it. */
export function commandLine(command: RuntimeCommand): string {
  switch (command.kind) {
    case 'add server':
      return `add server ${word(command.backend, 'backend')}/${word(command.server, 'server')} ${word(command.host, 'host')}:${word(command.port, 'port')}`
    case 'enable server':
      return `enable server ${word(command.backend, 'backend')}/${word(command.server, 'server')}`
    case 'set server addr':
      return `set server ${word(command.backend, 'backend')}/${word(command.server, 'server')} addr ${word(command.address, 'address')}`
    case 'set weight':
      if (!Number.isInteger(command.weight) || command.weight < 0 || command.weight > 256) throw new Error(`weight ${command.weight} is not an integer from 0 to 256`)
      return `set weight ${word(command.backend, 'backend')}/${word(command.server, 'server')} ${command.weight}`
    case 'add map':
      for (const entry of command.entries) {
        // A payload line is a key and a value: one space between two words.
        const parts = entry.split(' ')
        if (parts.length !== 2) throw new Error(`map entry ${JSON.stringify(entry)} is not a key and a value`)
        for (const part of parts) word(part, 'map entry part')
      }
      return `add map ${word(command.file, 'map file')} <<\n${command.entries.join('\n')}\n`
    case 'set map':
      return `set map ${word(command.file, 'map file')} ${word(command.key, 'map key')} ${word(command.value, 'map value')}`
    case 'del map':
      return `del map ${word(command.file, 'map file')} ${word(command.key, 'map key')}`
    case 'set ssl cert':
      return `set ssl cert ${word(command.path, 'certificate path')} <<\n${command.pem.trimEnd()}\n`
    case 'commit ssl cert':
      return `commit ssl cert ${word(command.path, 'certificate path')}`
    case 'abort ssl cert':
      return `abort ssl cert ${word(command.path, 'certificate path')}`
  }
}

/** The lines of a successful answer, by kind: a pattern every line must match, or none for a silent command. */
function expectedAnswer(command: RuntimeCommand): RegExp | undefined {
  switch (command.kind) {
    case 'add server':
      return /^New server registered\.$/
    case 'set server addr':
      // Sent only when the address changed; the same address is "no need to change the addr".
      return /^(IP changed from .* by 'stats socket command'|no need to change the addr.*)$/
    case 'set ssl cert':
      return /^Transaction (created|updated) for certificate .*$/
    case 'commit ssl cert':
      return /^(Committing .*|Success!|\.+)$/
    case 'abort ssl cert':
      return /^Transaction aborted for certificate .*$/
    default:
      return undefined
  }
}

/**
 * Splits the answer to `commands` sent on one line (`;`-separated) into one answer each: every
 * answer ends with an empty line. Then checks each against its kind. Returns the first problem,
 * or undefined when every command answered as it does when it succeeds.
 */
export function answerProblem(commands: readonly RuntimeCommand[], answer: string): string | undefined {
  const answers: string[][] = []
  let current: string[] = []
  const lines = answer.split('\n')
  // The text after the last newline is '' when the answer is complete.
  const tail = lines.pop()
  for (const line of lines) {
    if (line.trim() === '') {
      answers.push(current)
      current = []
    } else current.push(line.trim())
  }
  if (tail || current.length > 0) answers.push([...current, ...(tail ? [tail.trim()] : [])])
  for (const [i, command] of commands.entries()) {
    const got = answers[i]
    if (!got) return `no answer to "${commandLine(command).split('\n')[0]}" (${answers.length} answers to ${commands.length} commands)`
    const expected = expectedAnswer(command)
    const complete = i < answers.length - 1 || (tail === '' && current.length === 0)
    const wrong = expected ? (got.length === 0 ? '(an empty answer)' : got.find((l) => !expected.test(l))) : got[0]
    if (wrong !== undefined) return `${wrong} (after "${commandLine(command).split('\n')[0]}")`
    if (!complete) return `an unfinished answer to "${commandLine(command).split('\n')[0]}"`
  }
  if (answers.length > commands.length) return `${answers.length} answers to ${commands.length} commands: ${answers.slice(commands.length).flat().join(' ')}`
  return undefined
}

// A CLI command line must fit HAProxy's buffer (tune.bufsize, 16 kB by default).
const MAX_LINE = 8000

/**
 * `add map` commands for new entries, one payload per chunk of at most MAX_LINE bytes (HAProxy
 * takes about a millisecond per `add map` command, a few for a payload of a thousand entries).
 */
export function addMapCommands(file: string, entries: readonly string[]): RuntimeCommand[] {
  const commands: RuntimeCommand[] = []
  let chunk: string[] = []
  let length = 0
  const close = () => {
    if (chunk.length > 0) commands.push({ kind: 'add map', file, entries: chunk })
    chunk = []
    length = 0
  }
  for (const entry of entries) {
    if (length + entry.length + 1 > MAX_LINE) close()
    chunk.push(entry)
    length += entry.length + 1
  }
  close()
  return commands
}

/**
 * Sends commands to a worker's CLI socket, several per connection separated by `;`
 * (management.txt 9.3), a command with a payload alone on its connection. Throws at the first
 * answer that is not its command's success (`answerProblem`), with the command it came from.
 */
export async function sendCommands(socketPath: string, commands: readonly RuntimeCommand[], timeoutMs = 10_000): Promise<void> {
  let batch: RuntimeCommand[] = []
  let lines: string[] = []
  let length = 0
  const flush = async () => {
    if (batch.length === 0) return
    const sent = batch
    const text = lines.join(';')
    batch = []
    lines = []
    length = 0
    const problem = answerProblem(sent, await sendCommand(socketPath, text, timeoutMs))
    if (problem) throw new Error(problem)
  }
  for (const command of commands) {
    const line = commandLine(command)
    if (line.includes('\n')) {
      await flush()
      batch.push(command)
      lines.push(line)
      await flush()
      continue
    }
    if (length + line.length + 1 > MAX_LINE) await flush()
    batch.push(command)
    lines.push(line)
    length += line.length + 1
  }
  await flush()
}
