import { createConnection } from 'node:net'

/**
 * Sends one command to an HAProxy CLI socket (stats or master) and returns the whole answer.
 * The socket closes the connection after answering a single command (management.txt §9.3).
 */
export function sendCommand(socketPath: string, command: string, timeoutMs = 2000): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = []
    const socket = createConnection(socketPath)
    socket.setTimeout(timeoutMs, () => socket.destroy(new Error(`no answer to "${command}" within ${timeoutMs} ms`)))
    socket.on('connect', () => socket.end(`${command}\n`))
    socket.on('data', (chunk) => chunks.push(chunk))
    socket.on('error', reject)
    socket.on('close', (hadError) => {
      if (!hadError) resolve(Buffer.concat(chunks).toString('utf8'))
    })
  })
}

export interface WorkerInfo {
  pid: number
  /** The `description` of the configuration the worker runs (its version). */
  description: string
}

/** `show info` of the worker that currently owns the stats socket. */
export async function showInfo(socketPath: string, timeoutMs?: number): Promise<WorkerInfo> {
  const answer = await sendCommand(socketPath, 'show info', timeoutMs)
  const field = (name: string) => new RegExp(`^${name}: (.*)$`, 'm').exec(answer)?.[1] ?? ''
  return { pid: Number(field('Pid')), description: field('description') }
}
