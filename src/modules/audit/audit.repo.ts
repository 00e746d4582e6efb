import { and, asc, desc, eq, gt, gte, lt, lte, sql, type SQL } from 'drizzle-orm';
import type { DbOrTx } from '../../db/client.js';
import { auditChainHeads, auditEvents } from '../../db/schema.js';
import { GENESIS_HASH } from './audit-chain.js';
import { allSettledInTransaction } from '../../db/util.js';

export type AuditEventRow = typeof auditEvents.$inferSelect;

export interface AuditFilters {
  recordId?: string;
  threadId?: string;
  actorId?: string;
  action?: string;
  outcome?: AuditEventRow['outcome'];
  from?: Date;
  to?: Date;
}

export function createAuditRepo(db: DbOrTx) {
  return {
    /**
     * Locks the org's chain head for the rest of the transaction and returns it. The upsert's
     * DO UPDATE takes the row lock even when nothing changes, so concurrent writers in one
     * org queue here and the chain stays linear.
     */
    async lockHead(tx: DbOrTx, orgId: string): Promise<{ seq: number; hash: string }> {
      const [head] = await tx
        .insert(auditChainHeads)
        .values({ orgId, seq: 0, hash: GENESIS_HASH })
        .onConflictDoUpdate({ target: auditChainHeads.orgId, set: { seq: sql`${auditChainHeads.seq}` } })
        .returning({ seq: auditChainHeads.seq, hash: auditChainHeads.hash });
      return head!;
    },

    /** Rows of one org, in chain order; `moveHead` sets the org's head to the last one. */
    async append(tx: DbOrTx, rows: AuditEventRow[], moveHead = true): Promise<void> {
      const last = rows.at(-1);
      if (!last) return;
      // Sent together (postgres.js pipelines them in one write): the head lock is held meanwhile.
      await allSettledInTransaction([
        tx.insert(auditEvents).values(rows),
        moveHead ? tx.update(auditChainHeads).set({ seq: last.seq, hash: last.hash }).where(eq(auditChainHeads.orgId, last.orgId)) : undefined,
      ]);
    },

    async list(orgId: string, filters: AuditFilters, page: { afterSeq?: number; limit: number; order: 'asc' | 'desc' }) {
      const conditions: (SQL | undefined)[] = [eq(auditEvents.orgId, orgId), ...filterConditions(filters)];
      if (page.afterSeq !== undefined) {
        conditions.push(page.order === 'asc' ? gt(auditEvents.seq, page.afterSeq) : lt(auditEvents.seq, page.afterSeq));
      }
      return db
        .select()
        .from(auditEvents)
        .where(and(...conditions))
        .orderBy(page.order === 'asc' ? asc(auditEvents.seq) : desc(auditEvents.seq))
        .limit(page.limit + 1);
    },

    /** Events matching the filters after `afterSeq`, in chain order (for streaming exports). */
    async exportBatch(orgId: string, filters: AuditFilters, afterSeq: number, limit: number) {
      return db
        .select()
        .from(auditEvents)
        .where(and(eq(auditEvents.orgId, orgId), gt(auditEvents.seq, afterSeq), ...filterConditions(filters)))
        .orderBy(asc(auditEvents.seq))
        .limit(limit);
    },

    /** The event at a position of the chain. */
    async atSeq(orgId: string, seq: number) {
      const [row] = await db
        .select()
        .from(auditEvents)
        .where(and(eq(auditEvents.orgId, orgId), eq(auditEvents.seq, seq)));
      return row;
    },

    /** The first event at or after `from` (where a ranged verification starts). */
    async firstFrom(orgId: string, from: Date) {
      const [row] = await db
        .select()
        .from(auditEvents)
        .where(and(eq(auditEvents.orgId, orgId), gte(auditEvents.occurredAt, from)))
        .orderBy(asc(auditEvents.seq))
        .limit(1);
      return row;
    },

    /** Organizations with a chain (for the checkpoint schedule and the CLI). */
    async orgs() {
      return db.select({ orgId: auditChainHeads.orgId, seq: auditChainHeads.seq, hash: auditChainHeads.hash }).from(auditChainHeads);
    },

    /** A batch of the chain in seq order, for verification. */
    async chainBatch(orgId: string, afterSeq: number, limit: number) {
      return db
        .select()
        .from(auditEvents)
        .where(and(eq(auditEvents.orgId, orgId), gt(auditEvents.seq, afterSeq)))
        .orderBy(asc(auditEvents.seq))
        .limit(limit);
    },

    async head(orgId: string) {
      const [row] = await db.select().from(auditChainHeads).where(eq(auditChainHeads.orgId, orgId));
      return row ?? { orgId, seq: 0, hash: GENESIS_HASH };
    },
  };
}

function filterConditions(f: AuditFilters): (SQL | undefined)[] {
  return [
    f.recordId !== undefined ? eq(auditEvents.recordId, f.recordId) : undefined,
    f.threadId !== undefined ? eq(auditEvents.threadId, f.threadId) : undefined,
    f.actorId !== undefined ? eq(auditEvents.actorId, f.actorId) : undefined,
    f.action !== undefined ? eq(auditEvents.action, f.action) : undefined,
    f.outcome !== undefined ? eq(auditEvents.outcome, f.outcome) : undefined,
    f.from !== undefined ? gte(auditEvents.occurredAt, f.from) : undefined,
    f.to !== undefined ? lte(auditEvents.occurredAt, f.to) : undefined,
  ];
}

export type AuditRepo = ReturnType<typeof createAuditRepo>;
