/**
 * Builds sealed message rows and decrypts them into API views. Shared by thread creation
 * (the first message) and the messages service, so both seal exactly alike.
 */
import type { Actor } from '../../lib/context.js';
import { sideOf } from '../../lib/context.js';
import { messageFieldAad, withIntegrityTarget, type DataKey } from '../../lib/crypto/index.js';
import { newId } from '../../lib/ids.js';
import type { MessageRow } from './messages.repo.js';
import type { AttachmentView } from '../documents/document-codec.js';

export interface MessageView {
  id: string;
  threadId: string;
  author: { kind: MessageRow['authorKind']; id: string; name: string | null };
  body: string;
  sentAt: string;
  readAt: string | null;
  attachments: AttachmentView[];
}

export function buildMessageRow(threadKey: DataKey, thread: { orgId: string; id: string }, actor: Actor, body: string, sentAt: Date): MessageRow {
  const id = newId();
  const aad = (field: 'body' | 'author_name') => messageFieldAad(thread.orgId, thread.id, id, field);
  return {
    id,
    orgId: thread.orgId,
    threadId: thread.id,
    authorKind: actor.role === 'patron' || actor.role === 'external' ? actor.role : 'staff',
    authorSide: sideOf(actor),
    authorId: actor.id,
    authorName: threadKey.sealOptional(actor.name, aad('author_name')),
    body: threadKey.sealText(body, aad('body')),
    sentAt,
    readAt: null,
  };
}

export function toMessageView(threadKey: DataKey, row: MessageRow, attachments: AttachmentView[] = []): MessageView {
  return withIntegrityTarget({ threadId: row.threadId, messageId: row.id }, () => {
    const aad = (field: 'body' | 'author_name') => messageFieldAad(row.orgId, row.threadId, row.id, field);
    return {
      id: row.id,
      threadId: row.threadId,
      author: { kind: row.authorKind, id: row.authorId, name: threadKey.openOptional(row.authorName, aad('author_name')) },
      body: threadKey.openText(row.body, aad('body')),
      sentAt: row.sentAt.toISOString(),
      readAt: row.readAt ? row.readAt.toISOString() : null,
      attachments,
    };
  });
}
