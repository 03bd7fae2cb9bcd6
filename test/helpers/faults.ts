import { type ChildProcess, execFileSync, spawn } from 'node:child_process'
import { once } from 'node:events'
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { statfsSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { ApiAnswer } from './api-json.js'
import { defined } from './checks.js'
import { freePort, httpGet, type HttpReply, until, withJson } from './net.js'

const projectDir = fileURLToPath(new URL('../..', import.meta.url))

/** Another process listening on `port` (all addresses), as a foreign program holding it would. */
export async function holdPort(port: number): Promise<{ pid: number; port: number; release: () => Promise<void> }> {
  const child = spawn(process.execPath, ['-e', `require('net').createServer().listen(${port}, '0.0.0.0', () => console.log('held'))`], { stdio: ['ignore', 'pipe', 'inherit'] })
  const [chunk] = (await Promise.race([once(child.stdout!, 'data'), once(child, 'exit').then(() => [undefined])])) as [Buffer | undefined]
  if (!chunk?.toString().includes('held')) throw new Error(`could not hold port ${port}`)
  return {
    pid: defined(child.pid, 'the holding process pid'),
    port,
    release: async () => {
      if (child.exitCode !== null || child.signalCode !== null) return
      const exited = once(child, 'exit')
      child.kill('SIGKILL')
      await exited
    },
  }
}

/** A tmpfs of `sizeKb` KiB on a new folder (root only), filled on demand, unmounted at the end. */
export async function smallFilesystem(sizeKb: number) {
  const dir = await mkdtemp(join(tmpdir(), 'dfp-small-fs-'))
  execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${sizeKb}k,mode=700`, 'tmpfs', dir])
  const filler = join(dir, 'filler')
  return {
    dir,
    free: () => {
      const stats = statfsSync(dir)
      return stats.bavail * stats.bsize
    },
    /** Takes all the space but `leaveBytes`. */
    fill: async (leaveBytes: number) => {
      // The daemon may write between the measure and the filler's write: measure again and retry;
      // a disk that stays full to the last byte is what a fill is for.
      for (let attempt = 1; ; attempt++) {
        await rm(filler, { force: true })
        const stats = statfsSync(dir)
        const size = Math.max(0, stats.bavail * stats.bsize - leaveBytes)
        try {
          await writeFile(filler, Buffer.alloc(size))
          return
        } catch (err) {
          const full = err instanceof Error && 'code' in err && err.code === 'ENOSPC'
          if (!full) throw err
          // What the failed write put in the filler stays: the disk is full.
          if (attempt === 3) return
        }
      }
    },
    /** Gives the space back. */
    drain: () => rm(filler, { force: true }),
    unmount: async () => {
      execFileSync('umount', ['-l', dir])
      await rm(dir, { recursive: true, force: true })
    },
  }
}

export interface DaemonProcess {
  child: ChildProcess
  apiPort: number
  proxyPort: number
  /** The daemon's stdout lines (pino JSON), parsed. */
  lines: Array<Record<string, unknown>>
  call: <T = ApiAnswer>(endpoint: string, params?: Record<string, string>) => Promise<HttpReply & { json: T }>
  /** SIGKILL: no chance to save, stop HAProxy or clean up. */
  kill9: () => Promise<void>
  /** SIGTERM and wait for the exit. */
  stop: () => Promise<void>
}

/**
 * The daemon as its own process (`src/main.ts` through tsx), so a test can kill it with -9.
 * Resolves once the API answers /ping.
 */
export async function daemonProcess(configDir: string, env: Record<string, string> = {}, ports: { apiPort?: number; proxyPort?: number } = {}): Promise<DaemonProcess> {
  const apiPort = ports.apiPort ?? (await freePort())
  const proxyPort = ports.proxyPort ?? (await freePort())
  const child = spawn(process.execPath, ['--import', 'tsx', join(projectDir, 'src/main.ts')], {
    cwd: projectDir,
    stdio: ['ignore', 'pipe', 'inherit'],
    env: {
      PATH: process.env.PATH,
      RES_OPTIONS: 'timeout:1 attempts:1',
      CONFIG_DIR: configDir,
      SECRETS_DIR: join(configDir, 'no-secrets'),
      CERTS_DIR: join(configDir, 'no-certs'),
      DEFAULT_PORTS: String(proxyPort),
      RESOLVERS: 'nameserver dns 127.0.0.1:53',
      IP: '127.0.0.1',
      PORT: String(apiPort),
      LOG_LEVEL: 'info',
      ...env,
    },
  })
  const lines: Array<Record<string, unknown>> = []
  let rest = ''
  child.stdout?.on('data', (chunk: Buffer) => {
    const text = rest + chunk.toString('utf8')
    const parts = text.split('\n')
    rest = parts.pop() ?? ''
    for (const line of parts) {
      try {
        const parsed: Record<string, unknown> = JSON.parse(line)
        lines.push(parsed)
      } catch {
        lines.push({ msg: line })
      }
    }
  })
  const call = async <T = ApiAnswer>(endpoint: string, params: Record<string, string> = {}) => withJson<T>(await httpGet(apiPort, `/v1/docker-flow-proxy/${endpoint}?${new URLSearchParams(params)}`, {}, 120_000))
  const exited = once(child, 'exit')
  const up = await Promise.race([until(async () => (await call('ping')).status === 200, 60_000), exited.then(() => false)])
  if (!up) {
    child.kill('SIGKILL')
    throw new Error(`the daemon did not start: ${JSON.stringify(lines.slice(-5))}`)
  }
  return {
    child,
    apiPort,
    proxyPort,
    lines,
    call,
    kill9: async () => {
      if (child.exitCode !== null || child.signalCode !== null) return
      child.kill('SIGKILL')
      await exited
    },
    stop: async () => {
      if (child.exitCode !== null || child.signalCode !== null) return
      child.kill('SIGTERM')
      await exited
    },
  }
}

/** Stops an haproxy master a killed daemon left running (from its pid file), and waits for it. */
export async function stopLeftoverHaproxy(configDir: string): Promise<void> {
  try {
    const { readFileSync } = await import('node:fs')
    const pid = Number(readFileSync(join(configDir, 'haproxy-master.pid'), 'utf8').trim())
    if (!(pid > 0) || !readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('haproxy')) return
    process.kill(pid, 'SIGKILL')
    await until(async () => {
      try {
        readFileSync(`/proc/${pid}/cmdline`)
        return false
      } catch {
        return true
      }
    }, 10_000)
  } catch {
    // no pid file, or the process is gone
  }
}

/**
 * An HAPROXY_BIN that runs the real haproxy, except that while `<dir>/kill-check` exists the
 * next `haproxy -c` is killed (-9) as it starts: the validator dying under a request.
 */
export async function faultyHaproxy(): Promise<{ bin: string; killNextCheck: () => Promise<void>; dir: string }> {
  const dir = await mkdtemp(join(tmpdir(), 'dfp-faulty-haproxy-'))
  const real = execFileSync('sh', ['-c', 'command -v haproxy']).toString().trim()
  const bin = join(dir, 'haproxy')
  await writeFile(
    bin,
    `#!/bin/sh\nif [ "$1" = "-c" ] && [ -e "${dir}/kill-check" ]; then rm -f "${dir}/kill-check"; kill -9 $$; fi\nexec ${real} "$@"\n`,
  )
  await chmod(bin, 0o755)
  return { bin, dir, killNextCheck: () => writeFile(join(dir, 'kill-check'), '') }
}
