/**
 * Document Storage: uploads from the computer, the org library and record repositories, and
 * streamed downloads.
 *
 * Invariants:
 * - an upload never holds a transaction while the client sends: the row is 'pending' (no
 *   reader sees it) while its sealed chunks are written; one short final transaction reserves
 *   the storage, marks it 'ready' and writes the audit event. Any refusal (size, type, quota,
 *   a dropped connection) deletes the pending row and its content (through the BlobStore)
 *   before answering, so nothing is half-stored; after a crash, `sweepPendingUploads` removes
 *   what was left, and asks the store to sweep content that no ready document owns (README.md
 *   beside this file);
 * - the type is judged from the bytes (ContentInspector), never from the name or the
 *   declared media type; the name is display text only;
 * - content is sealed chunk by chunk as it arrives and opened chunk by chunk as it leaves;
 *   no file is ever whole in memory;
 * - staff and admins reach every document of their org; a patron reaches only documents it
 *   uploaded to its own record or that are attached in threads on its record; anything else
 *   is 404.
 */
import type { Logger } from 'pino';
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import type { Db, DbOrTx } from '../../db/client.js';
import type { Clock } from '../../lib/clock.js';
import { isStaffSide, type RecordKind, type RequestContext } from '../../lib/context.js';
import { ContentInspector, MAX_FILE_BYTES } from '../../lib/content-policy/content-inspector.js';
import {
  documentKeyContext,
  documentNameAad,
  IntegrityError,
  newNoncePrefix,
  openChunks,
  sealChunks,
  type KeyRing,
} from '../../lib/crypto/index.js';
import { AppError } from '../../lib/errors.js';
import { newId } from '../../lib/ids.js';
import { decodeCursor, encodeCursor, toPage, type Page } from '../../lib/pagination.js';
import type { AuditService } from '../audit/audit.service.js';
import type { RecordsRepo } from '../records/records.repo.js';
import type { RecordsService } from '../records/records.service.js';
import type { StorageService } from '../storage/storage.service.js';
import type { ThreadsRepo } from '../threads/threads.repo.js';
import type { BlobStore } from './blob-store.js';
import type { DocumentCodec, DocumentView, DocumentWithRecord } from './document-codec.js';
import type { DocumentRow, DocumentsRepo } from './documents.repo.js';

export type DocumentOwner =
  | { kind: 'library'; private: boolean }
  | { kind: 'record'; recordKind: RecordKind; recordId: string }
  /** An external recipient's upload: it lands on the record of the one thread it may reach. */
  | { kind: 'thread-record' };

export interface UploadInput {
  filename: string;
  stream: Readable;
  /** True when the multipart layer cut the file at its size limit. */
  truncated(): boolean;
}

export interface DownloadResult {
  document: DocumentView;
  body: Readable;
}

/** How many record-repository rows one search request may decrypt before it returns a page. */
const SEARCH_SCAN_LIMIT = 2000;
const SEARCH_BATCH = 100;

interface Deps {
  db: Db;
  repo: DocumentsRepo;
  recordsRepo: RecordsRepo;
  threadsRepo: ThreadsRepo;
  records: RecordsService;
  storage: StorageService;
  blobs: BlobStore;
  codec: DocumentCodec;
  keyRing: KeyRing;
  audit: AuditService;
  clock: Clock;
  log: Logger;
}

export function createDocumentsService(deps: Deps) {
  const { db, repo, recordsRepo, threadsRepo, records, storage, blobs, codec, keyRing, audit, clock, log } = deps;

  /** The document if the caller may reach it; 404 otherwise (denials on real documents audited). */
  async function loadForActor(tx: DbOrTx, ctx: RequestContext, documentId: string, action: string): Promise<DocumentWithRecord> {
    const doc = await repo.find(ctx.actor.orgId, documentId, tx);
    if (!doc) throw new AppError('not_found', 'No document with that id');
    if (isStaffSide(ctx.actor)) return doc;
    if (ctx.actor.role === 'external') {
      const ownUpload = doc.createdByKind === 'external' && doc.createdById === ctx.actor.id;
      if (ownUpload || (await repo.isAttachedInThread(ctx.actor.orgId, doc.id, ctx.actor.threadId ?? '', tx))) return doc;
      throw new AppError('not_found', 'No document with that id', { action, documentId });
    }
    const rec = ctx.actor.rec;
    const record = rec ? await recordsRepo.findByExternalId(ctx.actor.orgId, rec.kind, rec.id, tx) : undefined;
    const ownUpload = record !== undefined && doc.recordId === record.id && doc.createdByKind === 'patron' && doc.createdById === ctx.actor.id;
    if (record && (ownUpload || (await repo.isAttachedOnRecord(ctx.actor.orgId, doc.id, record.id, tx)))) return doc;
    throw new AppError('not_found', 'No document with that id', { action, documentId });
  }

  /**
   * Deletes an upload that never became ready: its content, then its pending row, in one
   * transaction. Nothing is touched unless the row is still pending under our lock: when the
   * final commit went through but its answer was lost (a dropped connection), the document is
   * ready and stored, and must stay so.
   */
  function discardPending(orgId: string, documentId: string): Promise<void> {
    return db.transaction(async (tx) => {
      if (!(await repo.lockPending(orgId, documentId, tx))) return;
      await blobs.remove(tx, { orgId, documentId });
      await repo.deletePending(orgId, documentId, tx);
    });
  }

  /** The upload itself, as document `id`; `onPendingRow` is told once a pending row exists to discard. */
  async function storeUpload(ctx: RequestContext, owner: DocumentOwner, input: UploadInput, id: string, onPendingRow: () => void): Promise<DocumentView> {
    const orgId = ctx.actor.orgId;
    let recordRow: { id: string; kind: RecordKind; externalId: string } | null = null;
    if (owner.kind === 'record') {
      recordRow = await records.resolve(ctx, owner.recordKind, owner.recordId, 'document.created');
    } else if (owner.kind === 'thread-record') {
      const thread = ctx.actor.threadId ? await threadsRepo.findWithRecord(orgId, ctx.actor.threadId) : undefined;
      if (!thread) throw new AppError('not_found', 'No thread with that id');
      recordRow = { id: thread.recordId, kind: thread.recordKind, externalId: thread.recordExternalId };
    }
    const ownerAudit = recordRow ? { recordKind: recordRow.kind, recordId: recordRow.externalId } : {};
    await storage.assertRoom(orgId);

    const now = clock.now();
    const { envelope, dataKey } = keyRing.createEnvelope(documentKeyContext(orgId, id));
    const noncePrefix = newNoncePrefix();
    const inspector = new ContentInspector({ filename: input.filename });
    const hash = createHash('sha256');
    let size = 0;
    async function* plaintext(): AsyncGenerator<Buffer> {
      const pieces = (input.stream as AsyncIterable<Buffer>)[Symbol.asyncIterator]();
      try {
        for (;;) {
          let step: IteratorResult<Buffer>;
          try {
            step = await pieces.next();
          } catch {
            // Only the request stream's own failure: a malformed multipart body (no closing
            // boundary, a part cut short) or a client gone mid-upload. The request is at fault.
            throw new AppError('validation_failed', 'The multipart body ended before the file did');
          }
          if (step.done) return;
          const piece = step.value;
          size += piece.length;
          if (size > MAX_FILE_BYTES) return; // the multipart limit should have cut it already
          inspector.push(piece);
          hash.update(piece);
          yield piece;
        }
      } finally {
        await pieces.return?.();
      }
    }
    const retentionUntil = await storage.retentionUntil(orgId, now);
    const source: DocumentRow['source'] =
      ctx.actor.role === 'external' ? 'external_reply' : ctx.actor.role === 'patron' ? 'message_reply' : 'upload';

    const row: DocumentRow = {
      id,
      orgId,
      ownerKind: owner.kind === 'library' ? 'library' : 'record',
      recordId: recordRow?.id ?? null,
      ...envelope,
      noncePrefix,
      namePlain: owner.kind === 'library' ? input.filename : null,
      nameSealed: owner.kind === 'library' ? null : dataKey.sealText(input.filename, documentNameAad(orgId, id)),
      mediaType: 'application/octet-stream',
      sizeBytes: 0,
      storedBytes: 0,
      chunkCount: 0,
      checksum: '',
      private: owner.kind === 'library' ? owner.private : false,
      source,
      createdByKind: ctx.actor.role,
      createdById: ctx.actor.id,
      createdAt: now,
      retentionUntil,
      deletedAt: null,
      status: 'pending',
    };
    // 1. A pending row (invisible to every reader), then the chunks as they arrive: no
    //    transaction or pooled connection is held while the client is still sending.
    await repo.insert(row);
    onPendingRow();
    const stored = await blobs.write({ orgId, documentId: id }, sealChunks(dataKey, { orgId, documentId: id, noncePrefix }, plaintext()));
    if (input.truncated() || size > MAX_FILE_BYTES) {
      throw refuse('payload_too_large', 'Attachments are limited to 25 MiB (26,214,400 bytes) each', ownerAudit);
    }
    const verdict = await inspector.finish();
    if (!verdict.ok) throw refuse('unsupported_media_type', verdict.detail, ownerAudit);
    // 2. One short transaction makes it real: storage reserved, row ready, event written.
    const final: DocumentRow = {
      ...row,
      status: 'ready',
      mediaType: verdict.mediaType,
      sizeBytes: size,
      storedBytes: stored.storedBytes,
      chunkCount: stored.chunkCount,
      checksum: hash.digest('hex'),
    };
    await db.transaction(async (tx) => {
      await storage.reserve(tx, orgId, stored.storedBytes);
      const { mediaType, sizeBytes, storedBytes, chunkCount, checksum } = final;
      // Never true in practice (a sweep takes uploads pending for an hour; a request gets
      // 180 s), but a document the sweep removed must not be announced as created.
      if (!(await repo.markReady(orgId, id, { mediaType, sizeBytes, storedBytes, chunkCount, checksum }, tx))) throw new Error('the pending upload row is gone');
      await audit.record(tx, ctx, { action: 'document.created', documentId: id, ...ownerAudit });
    });
    return codec.toView({ ...final, recordKind: recordRow?.kind ?? null, recordExternalId: recordRow?.externalId ?? null });
  }

  /** Refuses an upload: the caller's transaction rolls back; the refusal itself is audited. */
  function refuse(code: 'payload_too_large' | 'unsupported_media_type', detail: string, ownerAudit: { recordKind?: RecordKind; recordId?: string }) {
    return new AppError(code, detail, { action: 'document.created', ...ownerAudit });
  }

  return {
    loadForActor,

    async upload(ctx: RequestContext, owner: DocumentOwner, input: UploadInput): Promise<DocumentView> {
      const id = newId();
      let inserted = false;
      let ready = false;
      try {
        const view = await storeUpload(ctx, owner, input, id, () => (inserted = true));
        ready = true;
        return view;
      } finally {
        // Whatever happened, refusals before the first byte included, consume what is left of
        // the request so the connection can answer and be reused.
        if (!input.stream.readableEnded) input.stream.resume();
        // A refused or broken upload leaves nothing: its content and pending row go now. If the
        // store cannot delete (S3 unreachable), the transaction rolls back and the row stays
        // pending, so sweepPendingUploads tries again in an hour.
        if (inserted && !ready) await discardPending(ctx.actor.orgId, id).catch(() => undefined);
      }
    },

    /**
     * Removes uploads that a crash left pending for more than `olderThanMs` (row and content),
     * then has the store remove content older than that which no ready document owns (an S3
     * object whose row is gone, or an unfinished multipart upload). Returns how many of each.
     */
    async sweepPendingUploads(olderThanMs = 3_600_000): Promise<{ pending: number; orphans: number }> {
      const before = new Date(clock.now().getTime() - olderThanMs);
      // One upload that cannot be discarded (its content unreachable) must not stop the rest,
      // nor the orphan sweep: it stays pending, is passed over for this sweep, and is tried
      // again next time. At most 1,000 a sweep.
      let discarded = 0;
      const failed: string[] = [];
      for (let pass = 0; pass < 10; pass++) {
        const stale = await repo.stalePending(before, 100, failed);
        for (const doc of stale) {
          const ok = await discardPending(doc.orgId, doc.id).then(
            () => true,
            (error: unknown) => {
              log.warn({ err: error, documentId: doc.id }, 'a pending upload could not be discarded; it stays for the next sweep');
              return false;
            },
          );
          if (ok) discarded++;
          else failed.push(doc.id);
        }
        if (stale.length < 100) break;
      }
      const orphans = await blobs.sweepOrphans(before);
      return { pending: discarded, orphans };
    },

    /** Metadata includes the (PHI) name of a record document: audited as document.viewed. */
    async get(ctx: RequestContext, documentId: string): Promise<DocumentView> {
      return db.transaction(async (tx) => {
        const doc = await loadForActor(tx, ctx, documentId, 'document.viewed');
        await audit.record(tx, ctx, { action: 'document.viewed', documentId, recordKind: doc.recordKind ?? undefined, recordId: doc.recordExternalId ?? undefined });
        return codec.toView(doc);
      });
    },

    /**
     * Opens a download. The first chunk is authenticated before anything is sent, so a
     * tampered start answers a clean 500; a failure later aborts the response mid-body (the
     * client sees fewer bytes than Content-Length) and is audited.
     */
    async download(ctx: RequestContext, documentId: string): Promise<DownloadResult> {
      const doc = await db.transaction(async (tx) => {
        const found = await loadForActor(tx, ctx, documentId, 'document.downloaded');
        if (found.deletedAt) throw new AppError('document_deleted', 'The content was destroyed after its retention period');
        await audit.record(tx, ctx, { action: 'document.downloaded', documentId, recordKind: found.recordKind ?? undefined, recordId: found.recordExternalId ?? undefined });
        return found;
      });
      const view = codec.toView(doc);
      const key = codec.dataKey(doc);
      const chunks = openChunks(key, { orgId: doc.orgId, documentId: doc.id, noncePrefix: doc.noncePrefix }, doc.chunkCount, blobs.read({ orgId: doc.orgId, documentId: doc.id }));
      let first: IteratorResult<Buffer>;
      try {
        first = await chunks.next();
      } catch (error) {
        if (error instanceof IntegrityError) error.target = { documentId };
        throw error;
      }
      async function* rest(): AsyncGenerator<Buffer> {
        try {
          if (!first.done) yield first.value;
          for (;;) {
            const next = await chunks.next();
            if (next.done) return;
            yield next.value;
          }
        } catch (error) {
          if (error instanceof IntegrityError) {
            await audit
              .recordStandalone(ctx, { action: 'integrity.failed', outcome: 'error', documentId, reason: 'chunk' })
              .catch(() => undefined);
          }
          throw error;
        }
      }
      return { document: view, body: Readable.from(rest(), { objectMode: false }) };
    },

    async listLibrary(ctx: RequestContext, page: { q?: string; cursor?: string; limit: number }): Promise<Page<DocumentView>> {
      const before = decodeCursor(page.cursor, ['uuid'] as const);
      const rows = await repo.listLibrary(ctx.actor.orgId, { q: page.q, beforeId: before?.[0], limit: page.limit });
      return toPage(rows, page.limit, codec.toView, (r) => [r.id]);
    },

    /**
     * A record's repository, newest first. Names are PHI (sealed), so `q` filters decrypted
     * names: at most SEARCH_SCAN_LIMIT rows a request, with a cursor to continue. The listing
     * reads PHI, so it is audited in the same transaction.
     */
    async listRecord(ctx: RequestContext, kind: RecordKind, externalId: string, page: { q?: string; cursor?: string; limit: number }): Promise<Page<DocumentView>> {
      const record = await records.resolve(ctx, kind, externalId, 'document.listed');
      const start = decodeCursor(page.cursor, ['uuid'] as const)?.[0];
      return db.transaction(async (tx) => {
        await audit.record(tx, ctx, { action: 'document.listed', recordKind: kind, recordId: externalId });
        const needle = page.q?.toLocaleLowerCase();
        if (!needle) {
          const rows = await repo.listRecord(ctx.actor.orgId, record.id, { beforeId: start, limit: page.limit + 1 }, tx);
          return toPage(rows, page.limit, codec.toView, (r) => [r.id]);
        }
        const items: DocumentView[] = [];
        let beforeId = start;
        for (let scanned = 0; scanned < SEARCH_SCAN_LIMIT; scanned += SEARCH_BATCH) {
          const batch = await repo.listRecord(ctx.actor.orgId, record.id, { beforeId, limit: SEARCH_BATCH }, tx);
          for (const row of batch) {
            beforeId = row.id;
            const view = codec.toView(row);
            if (!view.name.toLocaleLowerCase().includes(needle)) continue;
            if (items.length === page.limit) return { items, nextCursor: encodeCursor([items[items.length - 1]!.id]) };
            items.push(view);
          }
          if (batch.length < SEARCH_BATCH) return { items, nextCursor: null };
        }
        // Scan budget spent: continue after the last row scanned.
        return { items, nextCursor: beforeId ? encodeCursor([beforeId]) : null };
      });
    },

    /** Crypto-shredding after the retention date: content and key are destroyed, metadata stays. */
    async remove(ctx: RequestContext, documentId: string): Promise<DocumentView> {
      return db.transaction(async (tx) => {
        const doc = await repo.find(ctx.actor.orgId, documentId, tx, true);
        if (!doc) throw new AppError('not_found', 'No document with that id');
        if (doc.deletedAt) return codec.toView(doc);
        const now = clock.now();
        if (now < doc.retentionUntil) {
          throw new AppError('retention_period_active', `This document must be kept until ${doc.retentionUntil.toISOString()}`, {
            action: 'document.deleted',
            documentId,
          });
        }
        const name = codec.nameOf(doc);
        await blobs.remove(tx, { orgId: doc.orgId, documentId });
        const shredded = { wrappedKey: Buffer.alloc(0), nameSealed: null, deletedAt: now };
        await repo.update(ctx.actor.orgId, documentId, shredded, tx);
        await storage.release(tx, ctx.actor.orgId, doc.storedBytes);
        await audit.record(tx, ctx, { action: 'document.deleted', documentId, recordKind: doc.recordKind ?? undefined, recordId: doc.recordExternalId ?? undefined });
        return { ...codec.toView({ ...doc, ...shredded }), name: doc.ownerKind === 'library' ? name : '(deleted)' };
      });
    },
  };
}

export type DocumentsService = ReturnType<typeof createDocumentsService>;
