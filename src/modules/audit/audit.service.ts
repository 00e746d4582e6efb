/**
 * The audit trail: one append-only, per-org hash-chained table (DESIGN section 7).
 *
 * Invariants:
 * - `record()` is called with the transaction of the change it describes, so the event and
 *   the change commit or roll back together;
 * - events carry ids, actions and outcomes only: never PHI, never tokens. A patron's name is
 *   PHI, so only staff-side actors get a name snapshot.
 */
import { randomInt } from 'node:crypto';
import { assertTransactionOpen, runBeforeCommit, type Db, type DbOrTx } from '../../db/client.js';
import { allSettledInTransaction } from '../../db/util.js';
import type { Clock } from '../../lib/clock.js';
import type { RequestContext } from '../../lib/context.js';
import { newId } from '../../lib/ids.js';
import type { CheckpointPayload, CheckpointSigner } from '../../lib/crypto/index.js';
import { decodeCursor, toPage, type Page } from '../../lib/pagination.js';
import { findChainBreak, GENESIS_HASH, type ChainBreak } from './audit-chain.js';
import type { AuditEventRow, AuditFilters, AuditRepo } from './audit.repo.js';

export type AuditOutcome = AuditEventRow['outcome'];

export interface AuditInput {
  action: string;
  outcome?: AuditOutcome;
  recordKind?: 'customer' | 'volunteer' | null;
  recordId?: string | null;
  threadId?: string | null;
  messageId?: string | null;
  documentId?: string | null;
  linkId?: string | null;
  /** A short machine reason (an error code), never free text from a request. */
  reason?: string | null;
}

export interface AuditEventView {
  id: string;
  seq: number;
  occurredAt: string;
  actor: { kind: string; id: string | null; name: string | null };
  action: string;
  outcome: AuditOutcome;
  record: { kind: string; id: string } | null;
  threadId: string | null;
  messageId: string | null;
  documentId: string | null;
  linkId: string | null;
  ip: string | null;
  userAgent: string | null;
  requestId: string | null;
  reason: string | null;
  hash: string;
}

/** A recorded event (ids, action, outcome; never PHI), before the chain gives it a position. */
export type RecordedAuditEvent = Omit<AuditEventRow, 'hash' | 'seq' | 'prevHash'>;
type PendingEvent = Omit<RecordedAuditEvent, 'occurredAt'>;

/**
 * Called inside the transaction that appended the event, so whatever a listener writes (a
 * webhook delivery) commits or rolls back with the change and its audit event.
 */
export type AuditListener = (tx: DbOrTx, event: RecordedAuditEvent) => Promise<void>;

const VERIFY_BATCH = 1000;
const EXPORT_BATCH = 1000;

const lowerUuid = (id: string | null | undefined): string | null => (id ? id.toLowerCase() : null);

export function createAuditService(deps: { db: Db; repo: AuditRepo; clock: Clock; signer: CheckpointSigner; chain?: boolean }) {
  const { db, repo, clock, signer } = deps;
  const chained = deps.chain ?? true;
  const listeners: AuditListener[] = [];

  /** Events recorded in a transaction whose chain step waits for its end (runBeforeCommit). */
  const pendingByTx = new WeakMap<object, PendingEvent[]>();

  /**
   * Chains and appends events, each in one statement (repo.appendLinked): the org's head is
   * locked, the event stamped and linked under the lock, and the head moved, so the lock is
   * held only for these final statements and the COMMIT. An org's events go in the order
   * recorded, sent together (postgres.js pipelines them; they run in order). Orgs in a fixed
   * order, so two transactions that write to the same orgs cannot deadlock on their heads.
   */
  async function appendChained(tx: DbOrTx, events: PendingEvent[]): Promise<void> {
    const now = clock.now();
    if (!chained) {
      // BENCH_AUDIT_CHAIN=off (bench mode only, never production): rows at random negative
      // positions, without the head lock that serializes an org's writers and without hashing.
      const rows = events.map((e) => ({ ...e, occurredAt: now, seq: -randomInt(2, 2 ** 47), prevHash: GENESIS_HASH, hash: GENESIS_HASH }));
      return repo.appendUnchained(tx, rows);
    }
    for (const orgId of [...new Set(events.map((e) => e.orgId))].sort()) {
      const own = events.filter((e) => e.orgId === orgId);
      const linked = await allSettledInTransaction(own.map((e) => repo.appendLinked(tx, e, now)));
      // The org's first events ever find no head row to lock, and write nothing. (Heads are
      // never deleted, so a concurrent first writer can make a later statement of ours find
      // one: misses come first, then hits.) Create the head and link the missed ones, in order.
      const missed = own.filter((_, i) => !linked[i]);
      if (missed.length === 0) continue;
      await repo.ensureHead(tx, orgId);
      for (const e of missed) {
        if (!(await repo.appendLinked(tx, e, now))) throw new Error('audit chain head missing after ensureHead');
      }
    }
  }

  async function record(tx: DbOrTx, ctx: RequestContext, input: AuditInput): Promise<void> {
    // A record() that arrives after its transaction ended must fail, not write its listeners'
    // rows outside the transaction or join a queue that was already appended.
    assertTransactionOpen(tx);
    // Patron names and external recipients' addresses are PHI: only staff-side names are kept.
    const staffSide = ctx.actor.role !== 'patron' && ctx.actor.role !== 'external';
    const event: PendingEvent = {
      id: newId(),
      orgId: ctx.actor.orgId,
      actorKind: ctx.actor.role,
      actorId: ctx.actor.id,
      actorName: staffSide ? ctx.actor.name : null,
      action: input.action,
      outcome: input.outcome ?? 'success',
      recordKind: input.recordKind ?? null,
      recordId: input.recordId ?? null,
      // UUIDs as PostgreSQL returns them (lowercase): a UUID typed in upper case in a URL would
      // otherwise be hashed in one case and read back for verification in the other.
      threadId: lowerUuid(input.threadId),
      messageId: lowerUuid(input.messageId),
      documentId: lowerUuid(input.documentId),
      // An external recipient acts through a link: name it on every event of theirs.
      linkId: lowerUuid(input.linkId ?? (ctx.actor.role === 'external' ? ctx.actor.id : null)),
      ip: ctx.ip,
      userAgent: ctx.userAgent,
      requestId: ctx.requestId,
      reason: input.reason ?? null,
    };
    // Listeners (webhook deliveries) write in this transaction too, before the head is locked.
    for (const listener of listeners) await listener(tx, { ...event, occurredAt: clock.now() });
    assertTransactionOpen(tx);
    const pending = pendingByTx.get(tx);
    if (pending) return void pending.push(event);
    // The chain step runs last in the transaction (the head lock is then held only through
    // COMMIT); outside a top-level transaction it runs now.
    const queued: PendingEvent[] = [event];
    if (runBeforeCommit(tx, () => appendChained(tx, queued))) pendingByTx.set(tx, queued);
    else await appendChained(tx, queued);
  }

  return {
    record,

    /** Registered by the composition root (webhooks), before the app serves requests. */
    onRecorded(listener: AuditListener) {
      listeners.push(listener);
    },

    /** For events with no change to share a transaction with (denials, integrity failures). */
    async recordStandalone(ctx: RequestContext, input: AuditInput): Promise<void> {
      await db.transaction((tx) => record(tx, ctx, input));
    },

    async list(
      ctx: RequestContext,
      filters: AuditFilters,
      page: { cursor?: string; limit: number; order: 'asc' | 'desc' },
    ): Promise<Page<AuditEventView>> {
      const after = decodeCursor(page.cursor, ['seq'] as const);
      const rows = await repo.list(ctx.actor.orgId, filters, { afterSeq: after?.[0], limit: page.limit, order: page.order });
      return toPage(rows, page.limit, toView, (r) => [r.seq]);
    },

    /**
     * Recomputes the org's hash chain in batches: from the genesis, or from the first event at
     * or after `from` (trusting that event's prev_hash), up to `to` or the head. Reports the
     * first broken link and the head reached. Against a saved checkpoint it also proves that
     * the event at the checkpoint's position still has the checkpoint's hash (no rewrite) and
     * that the chain still reaches that far (no truncated tail).
     */
    async verify(orgId: string, options: { from?: Date; to?: Date; checkpoint?: { seq: number; hash: string } } = {}): Promise<VerifyResult> {
      let cursor = { seq: 0, hash: GENESIS_HASH };
      if (options.from) {
        const first = await repo.firstFrom(orgId, options.from);
        if (first) cursor = { seq: first.seq - 1, hash: first.prevHash };
      }
      const ranged = options.from !== undefined || options.to !== undefined;
      let checked = 0;
      let checkpointHash: string | null = null;
      for (;;) {
        let batch = await repo.chainBatch(orgId, cursor.seq, VERIFY_BATCH);
        const full = batch.length === VERIFY_BATCH;
        // The window ends at the first event past `to`, in chain order. Not a filter: the
        // clocks of several instances differ by milliseconds, so occurred_at need not rise
        // strictly along the chain, and dropping one event inside the window would look like
        // a gap.
        if (options.to) {
          const end = batch.findIndex((e) => e.occurredAt > options.to!);
          if (end >= 0) batch = batch.slice(0, end);
        }
        const cp = options.checkpoint;
        if (cp) checkpointHash = batch.find((e) => e.seq === cp.seq)?.hash ?? checkpointHash;
        const result = findChainBreak(batch, cursor);
        if (result.break) return { valid: false, checked: checked + (result.head.seq - cursor.seq), firstBreak: result.break, head: result.head };
        checked += batch.length;
        cursor = result.head;
        if (!full || (options.to && batch.length < VERIFY_BATCH)) break;
      }
      if (options.checkpoint) {
        const cp = options.checkpoint;
        if (cursor.seq < cp.seq) return { valid: false, checked, firstBreak: { seq: cursor.seq + 1, eventId: null, problem: 'truncated_before_checkpoint' }, head: cursor };
        if (checkpointHash !== cp.hash) return { valid: false, checked, firstBreak: { seq: cp.seq, eventId: null, problem: 'checkpoint_mismatch' }, head: cursor };
      }
      if (!ranged) {
        const stored = await repo.head(orgId);
        if (stored.seq !== cursor.seq || stored.hash !== cursor.hash) {
          // The head row says more events existed than the table holds: the tail was removed.
          return { valid: false, checked, firstBreak: { seq: cursor.seq + 1, eventId: null, problem: 'sequence_gap' }, head: cursor };
        }
      }
      return { valid: true, checked, firstBreak: null, head: cursor };
    },

    /** Streams matching events as NDJSON lines, a batch at a time: memory stays flat. */
    async *exportLines(orgId: string, filters: AuditFilters): AsyncGenerator<string> {
      let after = 0;
      for (;;) {
        const batch = await repo.exportBatch(orgId, filters, after, EXPORT_BATCH);
        if (batch.length > 0) yield batch.map((r) => `${JSON.stringify(toView(r))}\n`).join('');
        if (batch.length < EXPORT_BATCH) return;
        after = batch[batch.length - 1]!.seq;
      }
    },

    /** The org's current head, signed with the checkpoint key. */
    async checkpoint(orgId: string): Promise<Checkpoint> {
      const head = await repo.head(orgId);
      const payload = { orgId, seq: head.seq, hash: head.hash, at: clock.now().toISOString() };
      return { ...payload, signature: signer.sign(payload) };
    },

    verifyCheckpointSignature(checkpoint: Checkpoint): boolean {
      return signer.verify(checkpoint, checkpoint.signature);
    },

    /** Publishes every org's signed head to the log (scheduled, and on demand). */
    async publishCheckpoints(log: { info(obj: object, msg: string): void }): Promise<number> {
      const orgs = await repo.orgs();
      for (const o of orgs) {
        const payload = { orgId: o.orgId, seq: o.seq, hash: o.hash, at: clock.now().toISOString() };
        log.info({ auditCheckpoint: { ...payload, signature: signer.sign(payload) } }, 'audit checkpoint');
      }
      return orgs.length;
    },
  };
}

export interface Checkpoint extends CheckpointPayload {
  signature: string;
}

export interface VerifyResult {
  valid: boolean;
  checked: number;
  firstBreak: (Omit<ChainBreak, 'problem'> & { problem: ChainBreak['problem'] | 'truncated_before_checkpoint' | 'checkpoint_mismatch' }) | null;
  head: { seq: number; hash: string };
}

function toView(r: AuditEventRow): AuditEventView {
  return {
    id: r.id,
    seq: r.seq,
    occurredAt: r.occurredAt.toISOString(),
    actor: { kind: r.actorKind, id: r.actorId, name: r.actorName },
    action: r.action,
    outcome: r.outcome,
    record: r.recordKind && r.recordId ? { kind: r.recordKind, id: r.recordId } : null,
    threadId: r.threadId,
    messageId: r.messageId,
    documentId: r.documentId,
    linkId: r.linkId,
    ip: r.ip,
    userAgent: r.userAgent,
    requestId: r.requestId,
    reason: r.reason,
    hash: r.hash,
  };
}

export type AuditService = ReturnType<typeof createAuditService>;
