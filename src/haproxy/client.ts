import { sendCommand, showInfo, type WorkerInfo } from './runtime.js'
import { showStat } from './stats.js'

/**
 * The running HAProxy as the rest of the daemon may use it: its Runtime API (the stats socket of
 * the current worker) and the master's pid. Routes, metrics and the status page get this instead
 * of reaching into the process manager.
 */
export class HaproxyClient {
  constructor(
    readonly statsSocket: string,
    private readonly masterPidOf: () => number | undefined = () => undefined,
  ) {}

  /** The pid of the master process, undefined while none runs. */
  get masterPid(): number | undefined {
    return this.masterPidOf()
  }

  /** One Runtime API command and its whole answer. */
  send(command: string, timeoutMs?: number): Promise<string> {
    return sendCommand(this.statsSocket, command, timeoutMs)
  }

  /** `show info` of the current worker. */
  info(timeoutMs?: number): Promise<WorkerInfo> {
    return showInfo(this.statsSocket, timeoutMs)
  }

  /** `show stat`: the statistics CSV of the current worker. */
  stats(timeoutMs?: number): Promise<string> {
    return showStat(this.statsSocket, timeoutMs)
  }
}
