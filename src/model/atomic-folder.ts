/**
 * Writes a folder atomically: everything goes into a sibling temporary folder, each file is fsynced,
 * then the folder is renamed into place. A reader sees the old folder or the complete new one,
 * never a half-written one (a crash leaves only a `.tmp-*` sibling behind).
 */
import { randomBytes } from 'node:crypto'
import { mkdir, open, readdir, rename, rm, stat, writeFile } from 'node:fs/promises'
import path from 'node:path'

export async function writeFolderAtomically(
  dir: string,
  fill: (tmp: string) => Promise<void>,
): Promise<number> {
  const target = path.resolve(dir)
  await mkdir(path.dirname(target), { recursive: true })
  const suffix = randomBytes(6).toString('hex')
  const tmp = `${target}.tmp-${suffix}`
  await mkdir(tmp)
  try {
    await fill(tmp)
    await syncTree(tmp)
  } catch (err) {
    await rm(tmp, { recursive: true, force: true })
    throw err
  }
  const old = `${target}.old-${suffix}`
  let replaced = false
  try {
    await rename(target, old)
    replaced = true
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err
  }
  await rename(tmp, target)
  await syncPath(path.dirname(target))
  if (replaced) await rm(old, { recursive: true, force: true })
  return folderBytes(target)
}

/**
 * Writes one file atomically: a uniquely named sibling, fsynced, renamed into place. Concurrent
 * writers of the same path each rename a complete file of their own (the last one wins).
 */
export async function writeFileAtomically(file: string, data: string | Uint8Array): Promise<void> {
  const tmp = `${file}.tmp-${randomBytes(6).toString('hex')}`
  const fh = await open(tmp, 'w')
  try {
    await fh.writeFile(data)
    await fh.sync()
  } finally {
    await fh.close()
  }
  await rename(tmp, file)
  await syncPath(path.dirname(file))
}

/** Writes a JSON file with a trailing newline (two-space indent, as transformers writes). */
export async function writeJson(file: string, value: unknown): Promise<void> {
  await writeFile(file, `${JSON.stringify(value, null, 2)}\n`)
}

async function syncPath(p: string): Promise<void> {
  const fh = await open(p, 'r')
  try {
    await fh.sync()
  } finally {
    await fh.close()
  }
}

async function syncTree(dir: string): Promise<void> {
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const p = path.join(dir, entry.name)
    if (entry.isDirectory()) await syncTree(p)
    else await syncPath(p)
  }
  await syncPath(dir)
}

async function folderBytes(dir: string): Promise<number> {
  let total = 0
  for (const entry of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (entry.isFile()) total += (await stat(path.join(entry.parentPath, entry.name))).size
  }
  return total
}
