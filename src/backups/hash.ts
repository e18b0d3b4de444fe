import { createHash } from 'node:crypto';
import { constants } from 'node:fs';
import { open } from 'node:fs/promises';

/**
 * Streams a file through SHA-256 in 1 MiB reads, never holding it in memory, so a large
 * backup costs the event loop one short hash update per chunk. Opens without blocking (a FIFO
 * named like a backup must not hang the reader) and refuses anything but a regular file.
 * Rejects with the system error (EACCES, EISDIR, EIO, ...) when the file cannot be read.
 */
export async function sha256File(path: string, signal?: AbortSignal): Promise<{ sha256: string; bytes: number }> {
  const fh = await open(path, constants.O_RDONLY | constants.O_NONBLOCK);
  try {
    const st = await fh.stat();
    if (!st.isFile()) throw Object.assign(new Error('not a regular file'), { code: 'ENOTREGULAR' });
    const hash = createHash('sha256');
    let bytes = 0;
    for await (const chunk of fh.createReadStream({ highWaterMark: 1 << 20, autoClose: false, ...(signal ? { signal } : {}) })) {
      const b = chunk as Buffer;
      bytes += b.length;
      hash.update(b);
    }
    return { sha256: hash.digest('hex'), bytes };
  } finally {
    await fh.close();
  }
}
