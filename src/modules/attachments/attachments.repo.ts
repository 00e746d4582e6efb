import { and, asc, eq, inArray } from 'drizzle-orm';
import type { DbOrTx } from '../../db/client.js';
import { documents, messageAttachments } from '../../db/schema.js';

export type AttachmentRow = typeof messageAttachments.$inferSelect;

export function createAttachmentsRepo(db: DbOrTx) {
  return {
    async insertMany(rows: AttachmentRow[], tx: DbOrTx = db) {
      if (rows.length > 0) await tx.insert(messageAttachments).values(rows);
    },

    /** The documents attached to each of `messageIds`, in attachment order. */
    async listForMessages(orgId: string, messageIds: string[], tx: DbOrTx = db) {
      if (messageIds.length === 0) return [];
      return tx
        .select({ messageId: messageAttachments.messageId, document: documents })
        .from(messageAttachments)
        .innerJoin(documents, eq(documents.id, messageAttachments.documentId))
        .where(and(eq(messageAttachments.orgId, orgId), inArray(messageAttachments.messageId, messageIds)))
        .orderBy(asc(messageAttachments.messageId), asc(messageAttachments.position));
    },
  };
}

export type AttachmentsRepo = ReturnType<typeof createAttachmentsRepo>;
