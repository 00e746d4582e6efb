import { and, desc, eq, gt, lte, sql } from 'drizzle-orm';
import type { DbOrTx } from '../../db/client.js';
import { emailOutbox } from '../../db/schema.js';

export type OutboxRow = typeof emailOutbox.$inferSelect;

export function createOutboxRepo(db: DbOrTx) {
  return {
    async insert(row: OutboxRow, tx: DbOrTx = db) {
      await tx.insert(emailOutbox).values(row);
    },

    /**
     * Claims due rows for this worker: FOR UPDATE SKIP LOCKED, so several instances never
     * take the same row, and a lease (next_attempt_at pushed forward) so a crashed worker's
     * rows come back after it expires.
     */
    async claimDue(now: Date, leaseUntil: Date, limit: number, tx: DbOrTx): Promise<OutboxRow[]> {
      const due = await tx
        .select()
        .from(emailOutbox)
        .where(and(eq(emailOutbox.status, 'pending'), lte(emailOutbox.nextAttemptAt, now)))
        .orderBy(emailOutbox.nextAttemptAt)
        .limit(limit)
        .for('update', { skipLocked: true });
      for (const row of due) {
        await tx
          .update(emailOutbox)
          .set({ attempts: sql`${emailOutbox.attempts} + 1`, nextAttemptAt: leaseUntil })
          .where(eq(emailOutbox.id, row.id));
      }
      return due.map((r) => ({ ...r, attempts: r.attempts + 1 }));
    },

    /**
     * Both outcomes apply only while the row is still this worker's claim (same attempt
     * number, still pending): a worker whose lease ran out, or that lost a race, changes
     * nothing, so it can never reopen a row another worker already sent.
     */
    async markSent(id: string, attempt: number, at: Date, tx: DbOrTx = db) {
      await tx
        .update(emailOutbox)
        .set({ status: 'sent', sentAt: at, bodySealed: null, lastError: null })
        .where(and(eq(emailOutbox.id, id), eq(emailOutbox.attempts, attempt), eq(emailOutbox.status, 'pending')));
    },

    async markRetry(id: string, attempt: number, next: Date, error: string, failed: boolean, tx: DbOrTx = db) {
      await tx
        .update(emailOutbox)
        .set({ status: failed ? 'failed' : 'pending', nextAttemptAt: next, lastError: error })
        .where(and(eq(emailOutbox.id, id), eq(emailOutbox.attempts, attempt), eq(emailOutbox.status, 'pending')));
    },

    /** The newest notice for a thread since `since`, for coalescing. */
    async recentNotice(orgId: string, threadId: string, since: Date, tx: DbOrTx = db) {
      const [row] = await tx
        .select({ id: emailOutbox.id })
        .from(emailOutbox)
        .where(and(eq(emailOutbox.orgId, orgId), eq(emailOutbox.threadId, threadId), eq(emailOutbox.kind, 'message_notice'), gt(emailOutbox.createdAt, since)))
        .orderBy(desc(emailOutbox.createdAt))
        .limit(1);
      return row;
    },
  };
}

export type OutboxRepo = ReturnType<typeof createOutboxRepo>;
