import { and, asc, eq, gt, inArray, lte, sql } from 'drizzle-orm';
import type { DbOrTx } from '../../db/client.js';
import { messages } from '../../db/schema.js';
import type { Side } from '../../lib/context.js';

export type MessageRow = typeof messages.$inferSelect;

export function createMessagesRepo(db: DbOrTx) {
  return {
    async insert(row: MessageRow, tx: DbOrTx = db) {
      await tx.insert(messages).values(row);
    },

    async find(orgId: string, threadId: string, messageId: string, tx: DbOrTx = db) {
      const [row] = await tx
        .select()
        .from(messages)
        .where(and(eq(messages.orgId, orgId), eq(messages.threadId, threadId), eq(messages.id, messageId)));
      return row;
    },

    async findMany(orgId: string, ids: string[], tx: DbOrTx = db) {
      if (ids.length === 0) return [];
      return tx
        .select()
        .from(messages)
        .where(and(eq(messages.orgId, orgId), inArray(messages.id, ids)))
        .orderBy(asc(messages.id));
    },

    /** Oldest first, keyset-paged on the time-ordered id. */
    async list(orgId: string, threadId: string, page: { afterId?: string; limit: number }, tx: DbOrTx = db) {
      return tx
        .select()
        .from(messages)
        .where(
          and(
            eq(messages.orgId, orgId),
            eq(messages.threadId, threadId),
            page.afterId ? gt(messages.id, page.afterId) : undefined,
          ),
        )
        .orderBy(asc(messages.id))
        .limit(page.limit + 1);
    },

    /** Crypto-shredding: bodies and author names of a thread's messages are destroyed. */
    async shredThread(orgId: string, threadId: string, tx: DbOrTx) {
      await tx
        .update(messages)
        .set({ body: Buffer.alloc(0), authorName: null })
        .where(and(eq(messages.orgId, orgId), eq(messages.threadId, threadId)));
    },

    /**
     * Sets read_at on `fromSide`'s unread messages up to and including `upToId`. The
     * `read_at is null` guard makes it set-once: an earlier read time never moves.
     */
    async markRead(orgId: string, threadId: string, fromSide: Side, upToId: string, at: Date, tx: DbOrTx = db) {
      return tx
        .update(messages)
        .set({ readAt: at })
        .where(
          and(
            eq(messages.orgId, orgId),
            eq(messages.threadId, threadId),
            eq(messages.authorSide, fromSide),
            lte(messages.id, upToId),
            sql`${messages.readAt} is null`,
          ),
        )
        .returning({ id: messages.id });
    },
  };
}

export type MessagesRepo = ReturnType<typeof createMessagesRepo>;
