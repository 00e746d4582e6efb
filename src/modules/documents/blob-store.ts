/**
 * Where sealed document chunks live: PostgreSQL rows (`document_chunks`, the default) or one S3
 * object per document (`BLOB_STORE=s3://bucket`, s3-blob-store.ts). `createBlobStore` picks one
 * from the configuration. The invariants every store keeps are in README.md beside this file.
 *
 * Invariant: `write` holds no transaction (and no pooled connection) while it waits for the
 * client: each batch of chunks is written on its own. The document stays 'pending', and
 * invisible, until the caller's final transaction marks it ready; if the upload fails, the
 * caller removes what was written (and a sweeper removes what a crash left behind).
 */
import { and, asc, eq, gte } from 'drizzle-orm';
import type { Config } from '../../config.js';
import type { Db, DbOrTx } from '../../db/client.js';
import { documentChunks } from '../../db/schema.js';
import type { SealedChunk } from '../../lib/crypto/index.js';

export interface BlobRef {
  orgId: string;
  documentId: string;
}

export interface BlobStore {
  /**
   * Stores the chunks in order; returns the number of chunks and stored bytes. When it
   * resolves, the content is complete and durable; when it rejects, it may have left part of
   * the content behind, which the caller removes with `remove`.
   */
  write(ref: BlobRef, chunks: AsyncIterable<SealedChunk>): Promise<{ chunkCount: number; storedBytes: number }>;
  /**
   * Streams the chunks back in index order, a few at a time. Content that is missing yields
   * no chunks (openChunks then fails the integrity check, as for any dropped chunk).
   */
  read(ref: BlobRef): AsyncIterable<SealedChunk>;
  /**
   * Deletes the content: a refused or broken upload's (in the transaction that deletes its
   * pending row), or a shredded document's (crypto-shredding also destroys the key). Deleting
   * content that is not there is not an error.
   */
  remove(tx: DbOrTx, ref: BlobRef): Promise<void>;
  /**
   * Deletes content last written before `olderThan` whose document row is missing, not
   * 'ready', or shredded, and aborts unfinished writes begun before it; returns how many it
   * removed. `olderThan` must lie further back than the longest upload can take (uploads are
   * cut at 180 s; the service passes an hour). Called by DocumentsService.sweepPendingUploads.
   */
  sweepOrphans(olderThan: Date): Promise<number>;
  /** Releases connections (the S3 client's sockets); the store is not used afterwards. */
  close(): Promise<void>;
}

/**
 * The configured store. The S3 driver (and the AWS SDK, ~0.3 s and ~30 MB to load) is imported
 * only when BLOB_STORE names a bucket.
 */
export async function createBlobStore(config: Pick<Config, 'blobStore'>, db: Db): Promise<BlobStore> {
  if (config.blobStore === 'postgres') return createPostgresBlobStore(db);
  const { createS3BlobStore } = await import('./s3-blob-store.js');
  return createS3BlobStore(db, config.blobStore);
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

    async sweepOrphans() {
      // Nothing to do here: every chunk row references its document row (foreign key), chunks
      // are deleted in the same transaction as a pending row or a shredded document's key, and
      // sweepPendingUploads removes the chunks of uploads a crash left pending.
      return 0;
    },

    async close() {},
  };
}
