import { open, rename } from 'node:fs/promises'

/** Writes a file so readers see the old or the new content, never a mix (temp, fsync, rename). */
export async function writeAtomic(path: string, content: string, mode = 0o644): Promise<void> {
  const temp = `${path}.tmp-${process.pid}`
  const handle = await open(temp, 'w', mode)
  try {
    await handle.writeFile(content)
    await handle.sync()
  } finally {
    await handle.close()
  }
  await rename(temp, path)
}
