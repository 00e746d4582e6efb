/**
 * Messages and read receipts.
 *
 * Rules enforced here:
 * - nobody writes to a closed thread; a patron writes only where reply is allowed;
 * - `readAt` is set by the other side only, once, and never moves;
 * - listing messages reads PHI and is audited as `message.listed`.
 */
import type { Db } from '../../db/client.js';
import type { Clock } from '../../lib/clock.js';
import { otherSide, sideOf, type RequestContext } from '../../lib/context.js';
import { AppError } from '../../lib/errors.js';
import { decodeCursor, toPage, type Page } from '../../lib/pagination.js';
import type { AttachmentsService } from '../attachments/attachments.service.js';
import type { AuditService } from '../audit/audit.service.js';
import type { Notices } from '../mail/notices.js';
import type { IdempotencyService } from '../idempotency/idempotency.service.js';
import type { ThreadsRepo, ThreadWithRecord } from '../threads/threads.repo.js';
import type { ThreadsService } from '../threads/threads.service.js';
import { buildMessageRow, toMessageView, type MessageView } from './message-codec.js';
import type { MessagesRepo } from './messages.repo.js';
import { allSettledInTransaction } from '../../db/util.js';

interface Deps {
  db: Db;
  repo: MessagesRepo;
  threadsRepo: ThreadsRepo;
  threads: ThreadsService;
  idempotency: IdempotencyService;
  attachments: AttachmentsService;
  notices: Notices;
  audit: AuditService;
  clock: Clock;
}

/** Where a new message's attachments must come from: the thread's org and record. */
export const attachTarget = (t: ThreadWithRecord) => ({
  orgId: t.orgId,
  threadId: t.id,
  recordId: t.recordId,
  recordKind: t.recordKind,
  recordExternalId: t.recordExternalId,
});

export function createMessagesService(deps: Deps) {
  const { db, repo, threadsRepo, threads, idempotency, attachments, notices, audit, clock } = deps;

  return {
    async list(ctx: RequestContext, threadId: string, page: { cursor?: string; limit: number }): Promise<Page<MessageView>> {
      const after = decodeCursor(page.cursor, ['uuid'] as const);
      return db.transaction(async (tx) => {
        // The page is read alongside the authorization check (one round trip) and used only
        // once the check passed.
        const [t, rows] = await allSettledInTransaction([
          threads.loadForActor(tx, ctx, threadId, 'message.listed'),
          repo.list(ctx.actor.orgId, threadId, { afterId: after?.[0], limit: page.limit }, tx),
        ]);
        const key = threads.threadKey(t);
        const files = await attachments.forMessages(tx, ctx.actor.orgId, rows.slice(0, page.limit).map((r) => r.id));
        const result = toPage(rows, page.limit, (r) => toMessageView(key, r, files.get(r.id)), (r) => [r.id]);
        await audit.record(tx, ctx, { action: 'message.listed', threadId, recordKind: t.recordKind, recordId: t.recordExternalId });
        return result;
      });
    },

    async send(ctx: RequestContext, threadId: string, input: { body: string; attachments?: { documentId: string }[] }, idempotencyKey?: string): Promise<{ message: MessageView; replayed: boolean }> {
      const orgId = ctx.actor.orgId;
      const { result, replayed } = await idempotency.run(ctx, {
        scope: `message.create:${threadId}`,
        key: idempotencyKey,
        request: input,
        create: async (tx) => {
          // The thread lock orders sends and read receipts of one thread: a message id (time
          // ordered) is minted only after it, so `read upTo` never covers a message that was
          // still uncommitted when the reader listed the thread.
          const t = await threads.loadForActor(tx, ctx, threadId, 'message.sent', true);
          const denied = { action: 'message.sent', threadId, recordKind: t.recordKind, recordId: t.recordExternalId };
          if (t.state === 'closed') throw new AppError('thread_closed', 'The thread is closed to new messages', denied);
          if (sideOf(ctx.actor) === 'recipient' && !t.replyAllowed) {
            throw new AppError('reply_not_allowed', 'Staff have not allowed replies on this thread', denied);
          }
          const now = clock.now();
          const key = threads.threadKey(t);
          const row = buildMessageRow(key, t, ctx.actor, input.body, now);
          // Independent statements go out together (one round trip on postgres.js); the
          // attachments reference the message row, so they follow it.
          await allSettledInTransaction([
            repo.insert(row, tx),
            threadsRepo.update(orgId, threadId, { lastActivityAt: now }, tx),
            audit.record(tx, ctx, { ...denied, messageId: row.id }),
            row.authorSide === 'staff' ? notices.newStaffMessage(tx, orgId, threadId, t.recordId) : undefined,
          ]);
          const files = await attachments.attach(tx, ctx, { ...attachTarget(t), messageId: row.id }, input.attachments);
          return { resourceId: row.id, result: toMessageView(key, row, files) };
        },
        replay: async (messageId) => {
          const t = await threadsRepo.findWithRecord(orgId, threadId);
          const row = t ? await repo.find(orgId, threadId, messageId) : undefined;
          if (!t || !row) throw new AppError('not_found', 'No message with that id');
          const files = await attachments.forMessages(db, orgId, [row.id]);
          return toMessageView(threads.threadKey(t), row, files.get(row.id));
        },
      });
      return { message: result, replayed };
    },

    /** Marks the other side's messages read up to `upTo`; each newly read message is audited. */
    async markRead(ctx: RequestContext, threadId: string, upTo: string): Promise<{ threadId: string; readAt: string | null; messageIds: string[] }> {
      return db.transaction(async (tx) => {
        const t = await threads.loadForActor(tx, ctx, threadId, 'message.read', true);
        const target = await repo.find(ctx.actor.orgId, threadId, upTo, tx);
        if (!target) throw new AppError('message_not_in_thread', 'upTo must be a message of this thread');
        const now = clock.now();
        const marked = await repo.markRead(ctx.actor.orgId, threadId, otherSide(sideOf(ctx.actor)), upTo, now, tx);
        marked.sort((a, b) => (a.id < b.id ? -1 : 1));
        for (const m of marked) {
          await audit.record(tx, ctx, { action: 'message.read', threadId, messageId: m.id, recordKind: t.recordKind, recordId: t.recordExternalId });
        }
        return { threadId, readAt: marked.length > 0 ? now.toISOString() : null, messageIds: marked.map((m) => m.id) };
      });
    },
  };
}

export type MessagesService = ReturnType<typeof createMessagesService>;
