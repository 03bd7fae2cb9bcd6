import { createSocket, type Socket } from 'node:dgram'
import { defined } from './checks.js'

/**
 * A tiny DNS server on UDP (127.0.0.1 by default) answering A queries from `records` (AAAA: an empty answer
 * for a known name, NXDOMAIN for an unknown one), each answer sent `delayMs` after its query, or
 * never while `silent`. It counts what it saw, per name, so a test can tell what a reload waited
 * for without timing it.
 */
export class TestDns {
  records: Record<string, string[]>
  delayMs = 0
  silent = false
  readonly queries = new Map<string, number>()
  readonly answers = new Map<string, number>()
  private socket?: Socket
  private readonly timers = new Set<NodeJS.Timeout>()

  constructor(records: Record<string, string[]> = {}) {
    this.records = records
  }

  /** On `host`:`port` (port 0: one the kernel picks; 53 needs root). */
  async start(host = '127.0.0.1', port = 0): Promise<this> {
    const socket = createSocket('udp4')
    this.socket = socket
    socket.on('message', (message, peer) => this.onQuery(message, peer.address, peer.port))
    await new Promise<void>((resolve) => socket.bind(port, host, resolve))
    return this
  }

  /** `host:port`, as RESOLVERS' `nameserver` takes it. */
  get server(): string {
    const { address, port } = defined(this.socket, 'the DNS server socket').address()
    return `${address}:${port}`
  }

  async stop(): Promise<void> {
    for (const timer of this.timers) clearTimeout(timer)
    await new Promise<void>((resolve) => (this.socket ? this.socket.close(() => resolve()) : resolve()))
  }

  private onQuery(message: Buffer, address: string, port: number): void {
    const question = parseQuestion(message)
    if (!question) return
    const { name } = question
    this.queries.set(name, (this.queries.get(name) ?? 0) + 1)
    if (this.silent) return
    const timer = setTimeout(() => {
      this.timers.delete(timer)
      this.answers.set(name, (this.answers.get(name) ?? 0) + 1)
      this.socket?.send(answer(message, question, this.records[name]), port, address)
    }, this.delayMs)
    this.timers.add(timer)
  }
}

interface Question {
  name: string
  type: number
  /** Offset of the byte after the question (type and class included). */
  end: number
}

function parseQuestion(message: Buffer): Question | undefined {
  if (message.length < 17 || message.readUInt16BE(4) !== 1) return undefined
  const labels: string[] = []
  let offset = 12
  while (offset < message.length && message[offset] !== 0) {
    const length = message.readUInt8(offset)
    labels.push(message.subarray(offset + 1, offset + 1 + length).toString('ascii'))
    offset += 1 + length
  }
  if (offset + 5 > message.length) return undefined
  return { name: labels.join('.').toLowerCase(), type: message.readUInt16BE(offset + 1), end: offset + 5 }
}

/** The answer to `query`: its id and question, then one A record per address (TTL 0). */
function answer(query: Buffer, question: Question, addresses: string[] | undefined): Buffer {
  const header = Buffer.alloc(12)
  query.copy(header, 0, 0, 2)
  const a = question.type === 1 ? (addresses ?? []) : []
  // QR, opcode 0, AA, RD copied, RA; NXDOMAIN for a name we do not know.
  header.writeUInt16BE(0x8480 | (query.readUInt16BE(2) & 0x0100) | (addresses ? 0 : 3), 2)
  header.writeUInt16BE(1, 4)
  header.writeUInt16BE(a.length, 6)
  const records = a.map((address) => {
    const record = Buffer.alloc(16)
    record.writeUInt16BE(0xc00c, 0) // the name: a pointer to the question's
    record.writeUInt16BE(1, 2) // A
    record.writeUInt16BE(1, 4) // IN
    record.writeUInt32BE(0, 6)
    record.writeUInt16BE(4, 10)
    address.split('.').forEach((part, i) => record.writeUInt8(Number(part), 12 + i))
    return record
  })
  return Buffer.concat([header, query.subarray(12, question.end), ...records])
}
