import { and, asc, desc, eq, ilike, inArray, isNull, lt, notInArray, sql } from 'drizzle-orm';
import type { DbOrTx } from '../../db/client.js';
import { documents, messageAttachments, records, threads } from '../../db/schema.js';
import type { DocumentWithRecord } from './document-codec.js';

export type DocumentRow = typeof documents.$inferSelect;

const withRecord = { doc: documents, recordKind: records.kind, recordExternalId: records.externalId };
const flatten = (r: { doc: DocumentRow; recordKind: 'customer' | 'volunteer' | null; recordExternalId: string | null }): DocumentWithRecord => ({
  ...r.doc,
  recordKind: r.recordKind,
  recordExternalId: r.recordExternalId,
});

/** Escapes LIKE wildcards so `q` is matched literally. */
const likePattern = (q: string) => `%${q.replace(/[\\%_]/g, (c) => `\\${c}`)}%`;

export function createDocumentsRepo(db: DbOrTx) {
  return {
    async insert(row: DocumentRow, tx: DbOrTx = db) {
      await tx.insert(documents).values(row);
    },

    async update(orgId: string, id: string, fields: Partial<DocumentRow>, tx: DbOrTx = db) {
      await tx
        .update(documents)
        .set(fields)
        .where(and(eq(documents.orgId, orgId), eq(documents.id, id)));
    },

    /** Makes a pending upload ready; false when it is no longer pending (a sweep removed it). */
    async markReady(orgId: string, id: string, fields: Partial<DocumentRow>, tx: DbOrTx): Promise<boolean> {
      const updated = await tx
        .update(documents)
        .set({ ...fields, status: 'ready' })
        .where(and(eq(documents.orgId, orgId), eq(documents.id, id), eq(documents.status, 'pending')))
        .returning({ id: documents.id });
      return updated.length === 1;
    },

    /**
     * Locks an upload's row while it is still pending; false when it is not (gone, or ready).
     * After waiting on a concurrent commit, the status is judged on the committed row.
     */
    async lockPending(orgId: string, id: string, tx: DbOrTx): Promise<boolean> {
      const rows = await tx
        .select({ id: documents.id })
        .from(documents)
        .where(and(eq(documents.orgId, orgId), eq(documents.id, id), eq(documents.status, 'pending')))
        .for('update');
      return rows.length === 1;
    },

    async find(orgId: string, id: string, tx: DbOrTx = db, forUpdate = false): Promise<DocumentWithRecord | undefined> {
      const query = tx
        .select(withRecord)
        .from(documents)
        .leftJoin(records, eq(records.id, documents.recordId))
        .where(and(eq(documents.orgId, orgId), eq(documents.id, id), eq(documents.status, 'ready')));
      const [row] = forUpdate ? await query.for('update', { of: documents }) : await query;
      return row ? flatten(row) : undefined;
    },

    async findMany(orgId: string, ids: string[], tx: DbOrTx = db) {
      if (ids.length === 0) return [];
      return tx
        .select()
        .from(documents)
        .where(and(eq(documents.orgId, orgId), inArray(documents.id, ids), eq(documents.status, 'ready')));
    },

    /** The org library, newest first; `q` matches names case-insensitively. */
    async listLibrary(orgId: string, page: { q?: string; beforeId?: string; limit: number }, tx: DbOrTx = db): Promise<DocumentWithRecord[]> {
      const rows = await tx
        .select(withRecord)
        .from(documents)
        .leftJoin(records, eq(records.id, documents.recordId))
        .where(
          and(
            eq(documents.orgId, orgId),
            eq(documents.ownerKind, 'library'),
            eq(documents.status, 'ready'),
            isNull(documents.deletedAt),
            page.q ? ilike(documents.namePlain, likePattern(page.q)) : undefined,
            page.beforeId ? lt(documents.id, page.beforeId) : undefined,
          ),
        )
        .orderBy(desc(documents.id))
        .limit(page.limit + 1);
      return rows.map(flatten);
    },

    /** A record's repository, newest first (names are sealed, so `q` is applied by the service). */
    async listRecord(orgId: string, recordId: string, page: { beforeId?: string; limit: number }, tx: DbOrTx = db): Promise<DocumentWithRecord[]> {
      const rows = await tx
        .select(withRecord)
        .from(documents)
        .leftJoin(records, eq(records.id, documents.recordId))
        .where(
          and(
            eq(documents.orgId, orgId),
            eq(documents.recordId, recordId),
            eq(documents.status, 'ready'),
            isNull(documents.deletedAt),
            page.beforeId ? lt(documents.id, page.beforeId) : undefined,
          ),
        )
        .orderBy(desc(documents.id))
        .limit(page.limit);
      return rows.map(flatten);
    },

    /**
     * Removes the row of an upload that never became ready. Its content belongs to the
     * BlobStore: the caller removes it first, in the same transaction (`blobs.remove`).
     */
    async deletePending(orgId: string, id: string, tx: DbOrTx = db) {
      await tx.delete(documents).where(and(eq(documents.orgId, orgId), eq(documents.id, id), eq(documents.status, 'pending')));
    },

    /** Pending uploads older than `before` (left by a crash), oldest first. */
    async stalePending(before: Date, limit: number, exceptIds: string[] = [], tx: DbOrTx = db) {
      return tx
        .select({ id: documents.id, orgId: documents.orgId })
        .from(documents)
        .where(and(eq(documents.status, 'pending'), lt(documents.createdAt, before), exceptIds.length > 0 ? notInArray(documents.id, exceptIds) : undefined))
        .orderBy(asc(documents.createdAt))
        .limit(limit);
    },

    /** Whether the document is attached to a message in a thread on `recordId`. */
    async isAttachedOnRecord(orgId: string, documentId: string, recordId: string, tx: DbOrTx = db): Promise<boolean> {
      const [row] = await tx
        .select({ one: sql<number>`1` })
        .from(messageAttachments)
        .innerJoin(threads, eq(threads.id, messageAttachments.threadId))
        .where(and(eq(messageAttachments.orgId, orgId), eq(messageAttachments.documentId, documentId), eq(threads.recordId, recordId)))
        .limit(1);
      return row !== undefined;
    },

    /** Whether the document is attached in this thread (external recipients, issue 4). */
    async isAttachedInThread(orgId: string, documentId: string, threadId: string, tx: DbOrTx = db): Promise<boolean> {
      const [row] = await tx
        .select({ one: sql<number>`1` })
        .from(messageAttachments)
        .where(and(eq(messageAttachments.orgId, orgId), eq(messageAttachments.documentId, documentId), eq(messageAttachments.threadId, threadId)))
        .limit(1);
      return row !== undefined;
    },
  };
}

export type DocumentsRepo = ReturnType<typeof createDocumentsRepo>;
