/**
 * Threads: staff-initiated conversations on one record (DESIGN sections 3 and 4).
 *
 * Rules enforced here:
 * - only staff and admins open threads (the route refuses other roles);
 * - a patron reaches only threads of its own record; anything else is 404, like a missing one;
 * - every read of a subject is audited (`thread.opened`, `thread.listed`).
 */
import type { Db, DbOrTx } from '../../db/client.js';
import type { Clock } from '../../lib/clock.js';
import { otherSide, sideOf, type RecordKind, type RecordRef, type RequestContext } from '../../lib/context.js';
import { threadKeyContext, threadSubjectAad, withIntegrityTarget, type DataKey, type KeyRing } from '../../lib/crypto/index.js';
import { AppError } from '../../lib/errors.js';
import { newId } from '../../lib/ids.js';
import { decodeCursor, toPage, type Page } from '../../lib/pagination.js';
import type { AttachmentsService } from '../attachments/attachments.service.js';
import type { AuditService } from '../audit/audit.service.js';
import type { Notices } from '../mail/notices.js';
import type { StorageService } from '../storage/storage.service.js';
import type { AccessRepo } from '../access/access.repo.js';
import type { IdempotencyService } from '../idempotency/idempotency.service.js';
import { buildMessageRow, toMessageView, type MessageView } from '../messages/message-codec.js';
import type { MessagesRepo } from '../messages/messages.repo.js';
import type { RecordsRepo } from '../records/records.repo.js';
import type { RecordsService } from '../records/records.service.js';
import type { ThreadRow, ThreadWithRecord, ThreadsRepo } from './threads.repo.js';

export interface ThreadView {
  id: string;
  record: RecordRef;
  subject: string;
  replyAllowed: boolean;
  state: ThreadRow['state'];
  createdBy: { id: string; name: string | null };
  createdAt: string;
  updatedAt: string;
  lastActivityAt: string;
  unreadCount: number;
}

export interface CreateThreadInput {
  record: RecordRef;
  subject: string;
  body: string;
  replyAllowed: boolean;
  attachments?: { documentId: string }[];
}

export interface ThreadPatch {
  replyAllowed?: boolean;
  state?: ThreadRow['state'];
}

interface Deps {
  db: Db;
  repo: ThreadsRepo;
  messagesRepo: MessagesRepo;
  recordsRepo: RecordsRepo;
  records: RecordsService;
  idempotency: IdempotencyService;
  attachments: AttachmentsService;
  notices: Notices;
  storage: StorageService;
  accessRepo: AccessRepo;
  keyRing: KeyRing;
  audit: AuditService;
  clock: Clock;
}

export function createThreadsService(deps: Deps) {
  const { db, repo, messagesRepo, recordsRepo, records, idempotency, attachments, notices, storage, accessRepo, keyRing, audit, clock } = deps;

  const threadKey = (t: Pick<ThreadRow, 'orgId' | 'id' | 'salt' | 'wrappedKey' | 'keyVersion'>): DataKey =>
    withIntegrityTarget({ threadId: t.id }, () => keyRing.openEnvelope(t, threadKeyContext(t.orgId, t.id)));

  function toView(t: ThreadRow, record: RecordRef, key: DataKey, unreadCount: number): ThreadView {
    return {
      id: t.id,
      record,
      subject: withIntegrityTarget({ threadId: t.id }, () => key.openText(t.subject, threadSubjectAad(t.orgId, t.id))),
      replyAllowed: t.replyAllowed,
      state: t.state,
      createdBy: { id: t.createdById, name: t.createdByName },
      createdAt: t.createdAt.toISOString(),
      updatedAt: t.updatedAt.toISOString(),
      lastActivityAt: t.lastActivityAt.toISOString(),
      unreadCount,
    };
  }

  const recordOf = (t: ThreadWithRecord): RecordRef => ({ kind: t.recordKind, id: t.recordExternalId });

  /** The thread if the caller may see it; otherwise 404 (denials on a real thread are audited). */
  async function loadForActor(tx: DbOrTx, ctx: RequestContext, threadId: string, action: string, forUpdate = false): Promise<ThreadWithRecord> {
    const thread = await repo.findWithRecord(ctx.actor.orgId, threadId, tx, forUpdate);
    if (!thread) {
      // A thread of another organization: the caller sees a plain 404; the owner's audit trail
      // gets the denied attempt (written by the errors plugin, after this transaction).
      const owner = await repo.ownerOrg(threadId, tx);
      const foreign = owner && owner !== ctx.actor.orgId ? { action, threadId, ownerOrgId: owner, reason: `foreign_org:${ctx.actor.orgId}` } : undefined;
      throw new AppError('not_found', 'No thread with that id', foreign);
    }
    const { actor } = ctx;
    if (actor.role === 'patron' && !(actor.rec?.kind === thread.recordKind && actor.rec.id === thread.recordExternalId)) {
      throw new AppError('not_found', 'No thread with that id', { action, threadId });
    }
    if (actor.role === 'external' && actor.threadId !== threadId) {
      throw new AppError('not_found', 'No thread with that id', { action, threadId });
    }
    if (thread.deletedAt && action !== 'thread.deleted') {
      throw new AppError('thread_deleted', 'The thread was deleted after its retention period; its metadata and audit trail remain');
    }
    return thread;
  }


  async function viewFor(ctx: RequestContext, t: ThreadWithRecord, tx: DbOrTx): Promise<ThreadView> {
    const unread = await repo.unreadCount(t.id, otherSide(sideOf(ctx.actor)), tx);
    return toView(t, recordOf(t), threadKey(t), unread);
  }

  async function listPage(ctx: RequestContext, recordRow: { id: string; kind: RecordKind; externalId: string }, page: { cursor?: string; limit: number }) {
    const after = decodeCursor(page.cursor, ['timestamp', 'uuid'] as const);
    return db.transaction(async (tx) => {
      const rows = await repo.listForRecord(
        ctx.actor.orgId,
        recordRow.id,
        otherSide(sideOf(ctx.actor)),
        { after: after ? { at: after[0], id: after[1] } : undefined, limit: page.limit },
        tx,
      );
      const record = { kind: recordRow.kind, id: recordRow.externalId };
      const result: Page<ThreadView> = toPage(
        rows,
        page.limit,
        (r) => toView(r.thread, record, threadKey(r.thread), r.unreadCount),
        (r) => [r.thread.lastActivityAt.toISOString(), r.thread.id],
      );
      await audit.record(tx, ctx, { action: 'thread.listed', recordKind: record.kind, recordId: record.id });
      return result;
    });
  }

  return {
    loadForActor,
    threadKey,
    viewFor,

    async create(ctx: RequestContext, input: CreateThreadInput, idempotencyKey?: string): Promise<{ thread: ThreadView; message: MessageView; replayed: boolean }> {
      const orgId = ctx.actor.orgId;
      const { result, replayed } = await idempotency.run(ctx, {
        scope: 'thread.create',
        key: idempotencyKey,
        request: input,
        create: async (tx) => {
          const record = await recordsRepo.findByExternalId(orgId, input.record.kind, input.record.id, tx);
          if (!record) throw new AppError('record_not_found', `No ${input.record.kind} with that id`);
          const id = newId();
          const now = clock.now();
          const { envelope, dataKey } = keyRing.createEnvelope(threadKeyContext(orgId, id));
          const thread: ThreadRow = {
            id,
            orgId,
            recordId: record.id,
            ...envelope,
            subject: dataKey.sealText(input.subject, threadSubjectAad(orgId, id)),
            replyAllowed: input.replyAllowed,
            state: 'open',
            createdById: ctx.actor.id,
            createdByName: ctx.actor.name,
            createdAt: now,
            updatedAt: now,
            lastActivityAt: now,
            deletedAt: null,
          };
          const message = buildMessageRow(dataKey, thread, ctx.actor, input.body, now);
          await repo.insert(thread, tx);
          await messagesRepo.insert(message, tx);
          const ids = { threadId: id, recordKind: record.kind, recordId: record.externalId };
          await audit.record(tx, ctx, { action: 'thread.created', ...ids });
          await audit.record(tx, ctx, { action: 'message.sent', ...ids, messageId: message.id });
          const files = await attachments.attach(
            tx,
            ctx,
            { orgId, threadId: id, recordId: record.id, recordKind: record.kind, recordExternalId: record.externalId, messageId: message.id },
            input.attachments,
          );
          await notices.newStaffMessage(tx, orgId, id, record.id);
          return {
            resourceId: id,
            result: { thread: toView(thread, input.record, dataKey, 0), message: toMessageView(dataKey, message, files) },
          };
        },
        replay: async (threadId) => {
          const t = await repo.findWithRecord(orgId, threadId);
          const [first] = t ? await messagesRepo.list(orgId, threadId, { limit: 1 }) : [];
          if (!t || !first) throw new AppError('not_found', 'No thread with that id');
          const key = threadKey(t);
          const files = await attachments.forMessages(db, orgId, [first.id]);
          return {
            thread: toView(t, recordOf(t), key, await repo.unreadCount(t.id, 'recipient')),
            message: toMessageView(key, first, files.get(first.id)),
          };
        },
      });
      return { ...result, replayed };
    },

    /** Opening a thread reads its subject: audited as `thread.opened`. */
    async open(ctx: RequestContext, threadId: string): Promise<ThreadView> {
      return db.transaction(async (tx) => {
        const t = await loadForActor(tx, ctx, threadId, 'thread.opened');
        const view = await viewFor(ctx, t, tx);
        await audit.record(tx, ctx, { action: 'thread.opened', threadId, recordKind: t.recordKind, recordId: t.recordExternalId });
        return view;
      });
    },

    async update(ctx: RequestContext, threadId: string, patch: ThreadPatch): Promise<ThreadView> {
      return db.transaction(async (tx) => {
        const t = await loadForActor(tx, ctx, threadId, 'thread.updated');
        const fields = { ...patch, updatedAt: clock.now() };
        await repo.update(ctx.actor.orgId, threadId, fields, tx);
        const changes = Object.entries(patch)
          .map(([k, v]) => `${k}=${String(v)}`)
          .join(',');
        await audit.record(tx, ctx, {
          action: 'thread.updated',
          threadId,
          recordKind: t.recordKind,
          recordId: t.recordExternalId,
          reason: changes,
        });
        return viewFor(ctx, { ...t, ...fields }, tx);
      });
    },

    /**
     * Deletes a thread after its retention date (last activity + the org's retention period):
     * crypto-shredding destroys its key, subject and message bodies, and the addresses of its
     * access links; ids, timestamps and the audit trail stay. 409 before the date.
     */
    async remove(ctx: RequestContext, threadId: string): Promise<{ id: string; deletedAt: string }> {
      return db.transaction(async (tx) => {
        const t = await loadForActor(tx, ctx, threadId, 'thread.deleted', true);
        if (t.deletedAt) return { id: t.id, deletedAt: t.deletedAt.toISOString() };
        const now = clock.now();
        const until = await storage.retentionUntil(ctx.actor.orgId, t.lastActivityAt, tx);
        if (now < until) {
          throw new AppError('retention_period_active', `This thread must be kept until ${until.toISOString()}`, {
            action: 'thread.deleted',
            threadId,
          });
        }
        await repo.update(ctx.actor.orgId, threadId, { wrappedKey: Buffer.alloc(0), subject: Buffer.alloc(0), deletedAt: now, state: 'closed', updatedAt: now }, tx);
        await messagesRepo.shredThread(ctx.actor.orgId, threadId, tx);
        await accessRepo.shredThreadLinks(ctx.actor.orgId, threadId, now, tx);
        await audit.record(tx, ctx, { action: 'thread.deleted', threadId, recordKind: t.recordKind, recordId: t.recordExternalId });
        return { id: threadId, deletedAt: now.toISOString() };
      });
    },

    /** The Secure Messages tab of a record (staff, admin, or the patron of that record). */
    async listForRecord(ctx: RequestContext, kind: RecordKind, externalId: string, page: { cursor?: string; limit: number }) {
      const record = await records.resolve(ctx, kind, externalId, 'thread.listed');
      return listPage(ctx, record, page);
    },

    /** A patron's own threads; an unknown record simply has none yet. */
    async listMine(ctx: RequestContext, page: { cursor?: string; limit: number }): Promise<Page<ThreadView>> {
      const rec = ctx.actor.rec;
      if (!rec) throw new AppError('forbidden', 'Only patrons have their own threads');
      const record = await recordsRepo.findByExternalId(ctx.actor.orgId, rec.kind, rec.id);
      if (!record) return { items: [], nextCursor: null };
      return listPage(ctx, record, page);
    },
  };
}

export type ThreadsService = ReturnType<typeof createThreadsService>;
