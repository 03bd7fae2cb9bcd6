import { open, readdir, rename, rm } from 'node:fs/promises'
import { join } from 'node:path'

/** The temporary name `writeAtomic` uses for `path`. */
const tempName = (path: string) => `${path}.tmp-${process.pid}`

/**
 * Writes a file so readers see the old or the new content, never a mix (temp, fsync, rename).
 * On failure (a full disk, say) the temporary file is removed and the old content stays.
 * Readable by the owner only unless `mode` says otherwise: haproxy.cfg holds passwords, and
 * HAProxy reads every file as the master, which runs as the daemon's user.
 */
export async function writeAtomic(path: string, content: string | Iterable<string>, mode = 0o600): Promise<void> {
  const temp = tempName(path)
  try {
    const handle = await open(temp, 'w', mode)
    try {
      if (typeof content === 'string') await handle.writeFile(content)
      else await writeInChunks(content, (text) => handle.writeFile(text))
      await handle.sync()
    } finally {
      await handle.close()
    }
    await rename(temp, path)
  } catch (err) {
    await rm(temp, { force: true, recursive: true }).catch(() => undefined)
    throw err
  }
}

/**
 * Writes parts of a text about 1 MB at a time: a large file (the state snapshot at 50 000
 * services) is never one string in memory.
 */
async function writeInChunks(parts: Iterable<string>, write: (text: string) => Promise<void>): Promise<void> {
  let pending: string[] = []
  let size = 0
  for (const part of parts) {
    pending.push(part)
    size += part.length
    if (size < 1 << 20) continue
    await write(pending.join(''))
    pending = []
    size = 0
  }
  if (pending.length > 0) await write(pending.join(''))
}

// What a daemon killed mid-write leaves behind: validation candidates and writeAtomic's temps.
const leftover = /^candidate-\d+-\d+|\.tmp-\d+$/

/**
 * Removes the temporary files a previous daemon left in `dir` and the folders below it that
 * dfp writes (a kill -9 or a full disk can leave them). Returns the names removed.
 */
export async function removeLeftovers(dir: string, depth = 2): Promise<string[]> {
  const removed: string[] = []
  let entries
  try {
    entries = await readdir(dir, { withFileTypes: true })
  } catch {
    return removed
  }
  for (const entry of entries) {
    const path = join(dir, entry.name)
    if (leftover.test(entry.name)) {
      await rm(path, { force: true, recursive: true }).catch(() => undefined)
      removed.push(path)
    } else if (entry.isDirectory() && depth > 0) {
      removed.push(...(await removeLeftovers(path, depth - 1)))
    }
  }
  return removed
}

/** A disk that is full, read-only or out of descriptors: the machinery failed, not the change. */
export const isFileSystemFailure = (err: unknown): boolean =>
  ['ENOSPC', 'EDQUOT', 'EROFS', 'EIO', 'EACCES', 'EPERM', 'EMFILE', 'ENFILE'].includes((err as NodeJS.ErrnoException)?.code ?? '')
