import { and, arrayContains, desc, eq, inArray, isNull, lt, lte, sql } from 'drizzle-orm';
import type { DbOrTx } from '../../db/client.js';
import { webhookAttempts, webhookDeliveries, webhookEndpoints } from '../../db/schema.js';

export type WebhookEndpointRow = typeof webhookEndpoints.$inferSelect;
export type WebhookDeliveryRow = typeof webhookDeliveries.$inferSelect;
export type WebhookAttemptRow = typeof webhookAttempts.$inferSelect;

export function createWebhooksRepo(db: DbOrTx) {
  return {
    async insertEndpoint(row: WebhookEndpointRow, tx: DbOrTx = db) {
      await tx.insert(webhookEndpoints).values(row);
    },

    /** A live (not deleted) endpoint of the org; `forUpdate` locks it for a deletion. */
    async findEndpoint(orgId: string, id: string, tx: DbOrTx = db, forUpdate = false) {
      const query = tx
        .select()
        .from(webhookEndpoints)
        .where(and(eq(webhookEndpoints.orgId, orgId), eq(webhookEndpoints.id, id), isNull(webhookEndpoints.deletedAt)));
      const [row] = forUpdate ? await query.for('update') : await query;
      return row;
    },

    async listEndpoints(orgId: string, page: { beforeId?: string; limit: number }, tx: DbOrTx = db) {
      return tx
        .select()
        .from(webhookEndpoints)
        .where(and(eq(webhookEndpoints.orgId, orgId), isNull(webhookEndpoints.deletedAt), page.beforeId ? lt(webhookEndpoints.id, page.beforeId) : undefined))
        .orderBy(desc(webhookEndpoints.id))
        .limit(page.limit + 1);
    },

    /** Live endpoints of the org subscribed to `eventType`. */
    async subscribers(orgId: string, eventType: string, tx: DbOrTx) {
      return tx
        .select({ id: webhookEndpoints.id })
        .from(webhookEndpoints)
        .where(and(eq(webhookEndpoints.orgId, orgId), isNull(webhookEndpoints.deletedAt), arrayContains(webhookEndpoints.events, [eventType])));
    },

    async deleteEndpoint(orgId: string, id: string, at: Date, tx: DbOrTx) {
      await tx
        .update(webhookEndpoints)
        .set({ deletedAt: at })
        .where(and(eq(webhookEndpoints.orgId, orgId), eq(webhookEndpoints.id, id)));
      // Nothing more goes to a deleted endpoint; what was queued stays in the log as failed.
      await tx
        .update(webhookDeliveries)
        .set({ status: 'failed' })
        .where(and(eq(webhookDeliveries.endpointId, id), eq(webhookDeliveries.status, 'pending')));
    },

    async insertDeliveries(rows: WebhookDeliveryRow[], tx: DbOrTx) {
      if (rows.length > 0) await tx.insert(webhookDeliveries).values(rows);
    },

    /**
     * Claims due deliveries with FOR UPDATE SKIP LOCKED (several instances never take the
     * same row) and a lease: next_attempt_at moves forward, so a crashed worker's claim comes
     * back when the lease ends.
     *
     * A delivery whose endpoint was deleted is marked failed here and never returned: a send
     * that read the subscriber list just before a concurrent deletion can commit its delivery
     * after the deletion's sweep of pending rows, and it must still not go out.
     */
    async claimDue(now: Date, leaseUntil: Date, limit: number, tx: DbOrTx): Promise<(WebhookDeliveryRow & { endpoint: WebhookEndpointRow })[]> {
      const due = await tx
        .select()
        .from(webhookDeliveries)
        .where(and(eq(webhookDeliveries.status, 'pending'), lte(webhookDeliveries.nextAttemptAt, now)))
        .orderBy(webhookDeliveries.nextAttemptAt)
        .limit(limit)
        .for('update', { skipLocked: true });
      if (due.length === 0) return [];
      const endpoints = await tx
        .select()
        .from(webhookEndpoints)
        .where(and(inArray(webhookEndpoints.id, [...new Set(due.map((d) => d.endpointId))]), isNull(webhookEndpoints.deletedAt)));
      const live = new Map(endpoints.map((e) => [e.id, e]));
      const claimed = due.filter((d) => live.has(d.endpointId));
      const orphaned = due.filter((d) => !live.has(d.endpointId));
      if (orphaned.length > 0) {
        await tx
          .update(webhookDeliveries)
          .set({ status: 'failed', nextAttemptAt: now })
          .where(inArray(webhookDeliveries.id, orphaned.map((d) => d.id)));
      }
      if (claimed.length > 0) {
        await tx
          .update(webhookDeliveries)
          .set({ attempts: sql`${webhookDeliveries.attempts} + 1`, nextAttemptAt: leaseUntil })
          .where(inArray(webhookDeliveries.id, claimed.map((d) => d.id)));
      }
      return claimed.map((d) => ({ ...d, attempts: d.attempts + 1, endpoint: live.get(d.endpointId)! }));
    },

    /**
     * Records one attempt, always: the request went out, so the log shows it. The outcome is
     * applied only while the row is still this worker's claim (same attempt number, still
     * pending): a worker whose lease ran out, or whose endpoint was deleted meanwhile, does
     * not overwrite the state. Returns whether the outcome was applied.
     */
    async recordAttempt(
      attempt: WebhookAttemptRow,
      outcome: { status: 'delivered' | 'pending' | 'failed'; nextAttemptAt: Date; deliveredAt: Date | null },
      tx: DbOrTx,
    ): Promise<boolean> {
      await tx.insert(webhookAttempts).values(attempt).onConflictDoNothing();
      const updated = await tx
        .update(webhookDeliveries)
        .set(outcome)
        .where(and(eq(webhookDeliveries.id, attempt.deliveryId), eq(webhookDeliveries.attempts, attempt.attempt), eq(webhookDeliveries.status, 'pending')))
        .returning({ id: webhookDeliveries.id });
      return updated.length > 0;
    },

    async listDeliveries(orgId: string, endpointId: string, page: { beforeId?: string; limit: number }, tx: DbOrTx = db) {
      return tx
        .select()
        .from(webhookDeliveries)
        .where(and(eq(webhookDeliveries.orgId, orgId), eq(webhookDeliveries.endpointId, endpointId), page.beforeId ? lt(webhookDeliveries.id, page.beforeId) : undefined))
        .orderBy(desc(webhookDeliveries.id))
        .limit(page.limit + 1);
    },

    async attemptsOf(deliveryIds: string[], tx: DbOrTx = db) {
      if (deliveryIds.length === 0) return [];
      return tx.select().from(webhookAttempts).where(inArray(webhookAttempts.deliveryId, deliveryIds)).orderBy(webhookAttempts.deliveryId, webhookAttempts.attempt);
    },
  };
}

export type WebhooksRepo = ReturnType<typeof createWebhooksRepo>;
