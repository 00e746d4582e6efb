/**
 * Where sealed document chunks live. PostgreSQL rows by default; the scale work adds S3.
 *
 * Invariant: `write` holds no transaction (and no pooled connection) while it waits for the
 * client: each batch of chunks is written on its own. The document stays 'pending', and
 * invisible, until the caller's final transaction marks it ready; if the upload fails, the
 * caller removes what was written (and a sweeper removes what a crash left behind).
 */
import { and, asc, eq, gte } from 'drizzle-orm';
import type { Db, DbOrTx } from '../../db/client.js';
import { documentChunks } from '../../db/schema.js';
import type { SealedChunk } from '../../lib/crypto/index.js';

export interface BlobRef {
  orgId: string;
  documentId: string;
}

export interface BlobStore {
  /** Stores the chunks in order; returns the number of chunks and stored bytes. */
  write(ref: BlobRef, chunks: AsyncIterable<SealedChunk>): Promise<{ chunkCount: number; storedBytes: number }>;
  /** Streams the chunks back in index order, a few at a time. */
  read(ref: BlobRef): AsyncIterable<SealedChunk>;
  /** Deletes the content (crypto-shredding also destroys the key). */
  remove(tx: DbOrTx, ref: BlobRef): Promise<void>;
}

/** Chunks per INSERT: ~1 MiB a statement keeps round trips low and memory bounded. */
const WRITE_BATCH = 16;
/** Chunks per SELECT while streaming a download. */
const READ_BATCH = 8;

export function createPostgresBlobStore(db: Db): BlobStore {
  return {
    async write(ref, chunks) {
      let batch: (typeof documentChunks.$inferInsert)[] = [];
      let chunkCount = 0;
      let storedBytes = 0;
      const flush = async () => {
        if (batch.length === 0) return;
        await db.insert(documentChunks).values(batch);
        batch = [];
      };
      for await (const chunk of chunks) {
        batch.push({ documentId: ref.documentId, orgId: ref.orgId, idx: chunk.idx, data: chunk.data });
        chunkCount++;
        storedBytes += chunk.data.length;
        if (batch.length >= WRITE_BATCH) await flush();
      }
      await flush();
      return { chunkCount, storedBytes };
    },

    async *read(ref) {
      let next = 0;
      for (;;) {
        const rows = await db
          .select({ idx: documentChunks.idx, data: documentChunks.data })
          .from(documentChunks)
          .where(and(eq(documentChunks.documentId, ref.documentId), eq(documentChunks.orgId, ref.orgId), gte(documentChunks.idx, next)))
          .orderBy(asc(documentChunks.idx))
          .limit(READ_BATCH);
        for (const row of rows) yield row;
        if (rows.length < READ_BATCH) return;
        next = rows[rows.length - 1]!.idx + 1;
      }
    },

    async remove(tx, ref) {
      await tx.delete(documentChunks).where(and(eq(documentChunks.documentId, ref.documentId), eq(documentChunks.orgId, ref.orgId)));
    },
  };
}
