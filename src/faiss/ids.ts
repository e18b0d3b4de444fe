// The label → row id map that housekeeper keeps beside a FAISS index it built. faiss-node has
// no add_with_ids, so FAISS labels are insertion positions (0 … ntotal-1); this file says
// which source row each label is. docs/faiss.md documents the format for the application.
//
//   <index path>.ids, little-endian:
//     offset  0  8 bytes   magic "HKFIDMAP"
//     offset  8  uint32    format version (1)
//     offset 12  uint32    flags (0)
//     offset 16  uint64    count: labels in the map (= the index's ntotal)
//     offset 24  uint64    size in bytes of the index file this map belongs to
//     offset 32  32 bytes  SHA-256 of the index file this map belongs to
//     offset 64  count × int64: the row id of label 0, 1, 2, …
//
// The index file and this file are replaced by two renames, which are not one atomic step:
// the hash pairs them, so a reader (and housekeeper's next run) can tell a map that belongs
// to another generation of the index from the right one. The file's size must be exactly
// 64 + 8 × count.
import { createHash } from 'node:crypto';
import { open } from 'node:fs/promises';

export const IDS_SUFFIX = '.ids';
export const IDS_MAGIC = 'HKFIDMAP';
export const IDS_VERSION = 1;
export const IDS_HEADER_BYTES = 64;

export function idsPath(indexPath: string): string {
  return `${indexPath}${IDS_SUFFIX}`;
}

/** The previous generation, kept for rollback (not part of a vector_index backup). */
export function prevPath(indexPath: string): string {
  return `${indexPath}.prev`;
}

export function prevIdsPath(indexPath: string): string {
  return `${indexPath}.prev${IDS_SUFFIX}`;
}

export interface IdsHeader {
  count: number;
  indexSize: number;
  /** Hex SHA-256 of the index file the map belongs to. */
  indexSha256: string;
}

export function encodeIdsHeader(h: IdsHeader): Buffer {
  const b = Buffer.alloc(IDS_HEADER_BYTES);
  b.write(IDS_MAGIC, 0, 'latin1');
  b.writeUInt32LE(IDS_VERSION, 8);
  b.writeUInt32LE(0, 12);
  b.writeBigUInt64LE(BigInt(h.count), 16);
  b.writeBigUInt64LE(BigInt(h.indexSize), 24);
  Buffer.from(h.indexSha256, 'hex').copy(b, 32);
  return b;
}

/** Parses a header; throws with a reason when it is not one of ours or does not fit the file size. */
export function decodeIdsHeader(b: Buffer, fileSize: number): IdsHeader {
  if (b.length < IDS_HEADER_BYTES || b.toString('latin1', 0, 8) !== IDS_MAGIC) throw new Error('not a housekeeper id map (bad magic)');
  const version = b.readUInt32LE(8);
  if (version !== IDS_VERSION) throw new Error(`id map version ${version} is not supported`);
  const count = b.readBigUInt64LE(16);
  const indexSize = b.readBigUInt64LE(24);
  if (count > BigInt(Number.MAX_SAFE_INTEGER) || indexSize > BigInt(Number.MAX_SAFE_INTEGER)) throw new Error('id map header out of range');
  const expected = IDS_HEADER_BYTES + Number(count) * 8;
  if (fileSize !== expected) throw new Error(`id map holds ${fileSize} bytes, its header says ${expected}`);
  return { count: Number(count), indexSize: Number(indexSize), indexSha256: b.toString('hex', 32, 64) };
}

/** Reads the header of an id map file. */
export async function readIdsHeader(path: string): Promise<IdsHeader> {
  const fh = await open(path, 'r');
  try {
    const st = await fh.stat();
    if (!st.isFile()) throw new Error('not a regular file');
    const b = Buffer.alloc(IDS_HEADER_BYTES);
    const { bytesRead } = await fh.read(b, 0, IDS_HEADER_BYTES, 0);
    return decodeIdsHeader(b.subarray(0, bytesRead), st.size);
  } finally {
    await fh.close();
  }
}

/** Reads a whole id map: the row id of each label. For tests and small tools; the application reads it its own way. */
export async function readIds(path: string): Promise<{ header: IdsHeader; ids: BigInt64Array }> {
  const fh = await open(path, 'r');
  try {
    const st = await fh.stat();
    const head = Buffer.alloc(IDS_HEADER_BYTES);
    await fh.read(head, 0, IDS_HEADER_BYTES, 0);
    const header = decodeIdsHeader(head, st.size);
    const body = Buffer.alloc(header.count * 8);
    const { bytesRead } = await fh.read(body, 0, body.length, IDS_HEADER_BYTES);
    if (bytesRead !== body.length) throw new Error('short read of the id map');
    const ids = new BigInt64Array(header.count);
    for (let i = 0; i < header.count; i++) ids[i] = body.readBigInt64LE(i * 8);
    return { header, ids };
  } finally {
    await fh.close();
  }
}

/**
 * SHA-256 and size of a file, read in 4 MiB pieces. Each piece is one short hash update on
 * the caller's thread, so a large index costs the event loop many small slices, not one long one.
 */
export async function fileSha256(path: string): Promise<{ sha256: string; size: number }> {
  const fh = await open(path, 'r');
  try {
    const hash = createHash('sha256');
    const b = Buffer.alloc(4 << 20);
    let size = 0;
    for (;;) {
      const { bytesRead } = await fh.read(b, 0, b.length, size);
      if (bytesRead === 0) break;
      hash.update(b.subarray(0, bytesRead));
      size += bytesRead;
    }
    return { sha256: hash.digest('hex'), size };
  } finally {
    await fh.close();
  }
}

/** Whether the id map at idsFile belongs to the index with this hash and size, and holds `vectors` labels. */
export async function idsMatch(idsFile: string, index: { sha256: string; size: number }, vectors?: number): Promise<{ ok: boolean; detail: string }> {
  let h: IdsHeader;
  try {
    h = await readIdsHeader(idsFile);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    return { ok: false, detail: code === 'ENOENT' ? 'no id map' : `id map unreadable: ${code ?? (err as Error).message}` };
  }
  if (h.indexSha256 !== index.sha256 || h.indexSize !== index.size) return { ok: false, detail: 'the id map belongs to another generation of the index' };
  if (vectors !== undefined && h.count !== vectors) return { ok: false, detail: `the id map holds ${h.count} labels, the index ${vectors} vectors` };
  return { ok: true, detail: `id map of ${h.count} labels matches the index` };
}
