import { and, desc, eq, isNull, sql } from 'drizzle-orm';
import type { DbOrTx } from '../../db/client.js';
import { messages, records, threads } from '../../db/schema.js';
import type { Side } from '../../lib/context.js';

export type ThreadRow = typeof threads.$inferSelect;
export type ThreadWithRecord = ThreadRow & { recordKind: 'customer' | 'volunteer'; recordExternalId: string };

/**
 * Messages written by `side` that nobody on the other side has read yet. Written with explicit
 * aliases: inside a select list Drizzle renders columns unqualified, which would bind
 * `id` to the inner table.
 */
const unreadFrom = (side: Side) =>
  sql<number>`(select count(*)::int from messages m where m.thread_id = "threads"."id"
    and m.read_at is null and m.author_side = ${side})`;

export function createThreadsRepo(db: DbOrTx) {
  return {
    async insert(row: ThreadRow, tx: DbOrTx = db) {
      await tx.insert(threads).values(row);
    },

    /** `forUpdate` locks the thread row: writers of one thread's messages and receipts queue. */
    async findWithRecord(orgId: string, threadId: string, tx: DbOrTx = db, forUpdate = false): Promise<ThreadWithRecord | undefined> {
      const query = tx
        .select({ thread: threads, recordKind: records.kind, recordExternalId: records.externalId })
        .from(threads)
        .innerJoin(records, eq(records.id, threads.recordId))
        .where(and(eq(threads.orgId, orgId), eq(threads.id, threadId)));
      const [row] = forUpdate ? await query.for('update', { of: threads }) : await query;
      return row ? { ...row.thread, recordKind: row.recordKind, recordExternalId: row.recordExternalId } : undefined;
    },

    /** The organization a thread belongs to, whoever asks (to audit cross-organization probes). */
    async ownerOrg(threadId: string, tx: DbOrTx = db): Promise<string | undefined> {
      const [row] = await tx.select({ orgId: threads.orgId }).from(threads).where(eq(threads.id, threadId));
      return row?.orgId;
    },

    async update(
      orgId: string,
      threadId: string,
      fields: Partial<Pick<ThreadRow, 'replyAllowed' | 'state' | 'updatedAt' | 'lastActivityAt' | 'wrappedKey' | 'subject' | 'deletedAt'>>,
      tx: DbOrTx = db,
    ) {
      await tx
        .update(threads)
        .set(fields)
        .where(and(eq(threads.orgId, orgId), eq(threads.id, threadId)));
    },

    async unreadCount(threadId: string, fromSide: Side, tx: DbOrTx = db): Promise<number> {
      const [row] = await tx
        .select({ n: sql<number>`count(*)::int` })
        .from(messages)
        .where(and(eq(messages.threadId, threadId), eq(messages.authorSide, fromSide), sql`${messages.readAt} is null`));
      return row?.n ?? 0;
    },

    /** A record's threads, newest activity first, keyset-paged on (last_activity_at, id). */
    async listForRecord(
      orgId: string,
      recordId: string,
      unreadFromSide: Side,
      page: { after?: { at: string; id: string }; limit: number },
      tx: DbOrTx = db,
    ) {
      const after = page.after;
      return tx
        .select({ thread: threads, unreadCount: unreadFrom(unreadFromSide) })
        .from(threads)
        .where(
          and(
            eq(threads.orgId, orgId),
            eq(threads.recordId, recordId),
            isNull(threads.deletedAt),
            after ? sql`(${threads.lastActivityAt}, ${threads.id}) < (${after.at}::timestamptz, ${after.id}::uuid)` : undefined,
          ),
        )
        .orderBy(desc(threads.lastActivityAt), desc(threads.id))
        .limit(page.limit + 1);
    },
  };
}

export type ThreadsRepo = ReturnType<typeof createThreadsRepo>;
