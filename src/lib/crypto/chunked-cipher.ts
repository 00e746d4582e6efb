/**
 * Streaming file encryption (DESIGN section 5): the plaintext is cut into fixed 64 KiB chunks,
 * each sealed with AES-256-GCM under the document's data key.
 *
 * - nonce = the document's random 8-byte prefix || the chunk index as 4 bytes big-endian, so no
 *   nonce repeats within a document (and each document has its own key);
 * - AAD = `document:<org>:<id>:<index>:<final 0|1>`, so a chunk moved to another document or
 *   position fails, and truncation (a non-final last chunk) or extension (anything after the
 *   final chunk) is detected;
 * - an empty file is one empty final chunk, so "no chunks at all" is never valid.
 * Memory stays at about one chunk, whatever the file size.
 */
import { randomBytes } from 'node:crypto';
import { IntegrityError, type DataKey } from './key-ring.js';

export const CHUNK_BYTES = 64 * 1024;
export const NONCE_PREFIX_BYTES = 8;
/** AES-GCM tag per stored chunk. */
export const CHUNK_OVERHEAD_BYTES = 16;

export interface ChunkContext {
  orgId: string;
  documentId: string;
  noncePrefix: Buffer;
}

export interface SealedChunk {
  idx: number;
  data: Buffer;
}

export const newNoncePrefix = (): Buffer => randomBytes(NONCE_PREFIX_BYTES);

function nonceFor(prefix: Buffer, idx: number): Buffer {
  const nonce = Buffer.alloc(12);
  prefix.copy(nonce, 0, 0, NONCE_PREFIX_BYTES);
  nonce.writeUInt32BE(idx, NONCE_PREFIX_BYTES);
  return nonce;
}

const aadFor = (ctx: ChunkContext, idx: number, final: boolean) =>
  Buffer.from(`document:${ctx.orgId}:${ctx.documentId}:${idx}:${final ? 1 : 0}`, 'utf8');

/** Re-chunks `source` into CHUNK_BYTES pieces and seals them; the last one carries final=1. */
export async function* sealChunks(key: DataKey, ctx: ChunkContext, source: AsyncIterable<Buffer>): AsyncGenerator<SealedChunk> {
  let pending: Buffer[] = [];
  let pendingBytes = 0;
  let held: Buffer | undefined; // one full chunk held back until we know whether it is the last
  let idx = 0;
  const take = (): Buffer => {
    const all = pending.length === 1 ? pending[0]! : Buffer.concat(pending, pendingBytes);
    const chunk = all.subarray(0, CHUNK_BYTES);
    const rest = all.subarray(CHUNK_BYTES);
    pending = rest.length > 0 ? [rest] : [];
    pendingBytes = rest.length;
    return chunk;
  };
  for await (const piece of source) {
    if (piece.length === 0) continue;
    pending.push(piece);
    pendingBytes += piece.length;
    while (pendingBytes > CHUNK_BYTES) {
      const chunk = take();
      if (held) yield { idx, data: key.sealChunk(held, nonceFor(ctx.noncePrefix, idx), aadFor(ctx, idx++, false)) };
      held = Buffer.from(chunk);
    }
  }
  if (pendingBytes > 0) {
    const last = take();
    if (held) yield { idx, data: key.sealChunk(held, nonceFor(ctx.noncePrefix, idx), aadFor(ctx, idx++, false)) };
    held = last;
  }
  yield { idx, data: key.sealChunk(held ?? Buffer.alloc(0), nonceFor(ctx.noncePrefix, idx), aadFor(ctx, idx, true)) };
}

/**
 * Opens chunks in order and yields plaintext. Each chunk is authenticated before its
 * plaintext is yielded; a missing, extra, reordered or foreign chunk throws IntegrityError.
 */
export async function* openChunks(key: DataKey, ctx: ChunkContext, chunkCount: number, source: AsyncIterable<SealedChunk>): AsyncGenerator<Buffer> {
  let expected = 0;
  for await (const chunk of source) {
    if (chunk.idx !== expected || expected >= chunkCount) throw new IntegrityError('chunk sequence');
    const final = expected === chunkCount - 1;
    yield key.openChunk(chunk.data, nonceFor(ctx.noncePrefix, expected), aadFor(ctx, expected, final));
    expected++;
  }
  if (expected !== chunkCount) throw new IntegrityError('chunk sequence');
}
