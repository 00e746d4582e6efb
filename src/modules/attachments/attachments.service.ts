/**
 * Attachments: a message references documents that already exist in Document Storage; it
 * never copies them (DESIGN section 4, "Documents and attachments").
 *
 * A document may be attached when it is a non-private library document or a document of the
 * thread's own record. A patron may attach only documents it uploaded itself, so attaching
 * can never widen what a patron can download. Each refusal has its own 422 code; a document
 * of another organization is indistinguishable from a missing one.
 */
import type { DbOrTx } from '../../db/client.js';
import type { RequestContext } from '../../lib/context.js';
import { AppError } from '../../lib/errors.js';
import type { AuditService } from '../audit/audit.service.js';
import type { AttachmentView, DocumentCodec } from '../documents/document-codec.js';
import type { DocumentsRepo } from '../documents/documents.repo.js';
import type { AttachmentsRepo } from './attachments.repo.js';

export interface AttachTarget {
  orgId: string;
  threadId: string;
  recordId: string;
  recordKind: 'customer' | 'volunteer';
  recordExternalId: string;
  messageId: string;
}

export function createAttachmentsService(deps: { repo: AttachmentsRepo; documentsRepo: DocumentsRepo; codec: DocumentCodec; audit: AuditService }) {
  const { repo, documentsRepo, codec, audit } = deps;

  return {
    /** Checks every reference, then links them to the message and audits each link. */
    async attach(tx: DbOrTx, ctx: RequestContext, target: AttachTarget, refs: { documentId: string }[] | undefined): Promise<AttachmentView[]> {
      if (!refs || refs.length === 0) return [];
      const ids = refs.map((r) => r.documentId);
      const found = new Map((await documentsRepo.findMany(target.orgId, ids, tx)).map((d) => [d.id, d]));
      const views: AttachmentView[] = [];
      for (const id of ids) {
        const doc = found.get(id);
        if (!doc || doc.deletedAt) throw new AppError('attachment_not_found', `Document ${id} does not exist`);
        if (doc.ownerKind === 'library' && doc.private) throw new AppError('attachment_private', `Document ${id} is private to the library`);
        if (doc.ownerKind === 'record' && doc.recordId !== target.recordId) {
          throw new AppError('attachment_wrong_record', `Document ${id} belongs to another record`);
        }
        const recipient = ctx.actor.role === 'patron' || ctx.actor.role === 'external';
        if (recipient && !(doc.createdByKind === ctx.actor.role && doc.createdById === ctx.actor.id)) {
          throw new AppError('attachment_not_allowed', `Document ${id} was not uploaded by you`);
        }
        views.push(codec.toAttachment(doc));
      }
      await repo.insertMany(
        ids.map((documentId, position) => ({ messageId: target.messageId, documentId, orgId: target.orgId, threadId: target.threadId, position })),
        tx,
      );
      for (const documentId of ids) {
        await audit.record(tx, ctx, {
          action: 'attachment.attached',
          threadId: target.threadId,
          messageId: target.messageId,
          documentId,
          recordKind: target.recordKind,
          recordId: target.recordExternalId,
        });
      }
      return views;
    },

    /** Attachment summaries for a page of messages. */
    async forMessages(tx: DbOrTx, orgId: string, messageIds: string[]): Promise<Map<string, AttachmentView[]>> {
      const byMessage = new Map<string, AttachmentView[]>();
      for (const row of await repo.listForMessages(orgId, messageIds, tx)) {
        const list = byMessage.get(row.messageId) ?? [];
        list.push(codec.toAttachment(row.document));
        byMessage.set(row.messageId, list);
      }
      return byMessage;
    },
  };
}

export type AttachmentsService = ReturnType<typeof createAttachmentsService>;
