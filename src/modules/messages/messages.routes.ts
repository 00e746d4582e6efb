import { Type, type Static } from 'typebox';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { requestContext } from '../../plugins/auth.js';
import { IdempotencyHeaders, NextCursor, PageQuery, problems, ref, StringEnum, Uuid } from '../../lib/schemas.js';
import { DEFAULT_PAGE_SIZE } from '../../lib/pagination.js';
import { EXAMPLE } from '../../lib/examples.js';
import { Attachment, ATTACHMENT_EXAMPLE, AttachmentRefs } from '../documents/documents.routes.js';
import type { MessagesService } from './messages.service.js';

export const Message = Type.Object(
  {
    id: Uuid(),
    threadId: Uuid(),
    author: Type.Object(
      {
        kind: StringEnum(['staff', 'patron', 'external'] as const),
        id: Type.String(),
        name: Type.Union([Type.String(), Type.Null()]),
      },
      { additionalProperties: false },
    ),
    body: Type.String(),
    sentAt: Type.String({ format: 'date-time' }),
    readAt: Type.Union([Type.String({ format: 'date-time' }), Type.Null()], {
      description: 'When the other side first read it; null until then. Set once, never moved.',
    }),
    attachments: Type.Array(ref(Attachment)),
  },
  { $id: 'Message', additionalProperties: false },
);

export const MessagePage = Type.Object(
  { items: Type.Array(ref(Message)), nextCursor: NextCursor },
  { $id: 'MessagePage', additionalProperties: false },
);

export const SendMessage = Type.Object(
  { body: Type.String({ minLength: 1, maxLength: 20000 }), attachments: Type.Optional(ref(AttachmentRefs)) },
  { $id: 'SendMessage', additionalProperties: false },
);

export const MarkRead = Type.Object(
  { upTo: Uuid({ description: 'The newest message the caller has read; earlier ones are marked too' }) },
  { $id: 'MarkRead', additionalProperties: false },
);

export const ReadReceipt = Type.Object(
  {
    threadId: Uuid(),
    readAt: Type.Union([Type.String({ format: 'date-time' }), Type.Null()], { description: 'Null when nothing new was marked' }),
    messageIds: Type.Array(Uuid(), { description: 'The messages this call marked read' }),
  },
  { $id: 'ReadReceipt', additionalProperties: false },
);

export const messageSchemas = [Message, MessagePage, SendMessage, MarkRead, ReadReceipt];

/** Staff's first message on the example thread, with a document attached; read by the patron. */
export const MESSAGE_EXAMPLE: Static<typeof Message> = {
  id: EXAMPLE.messageId,
  threadId: EXAMPLE.threadId,
  author: { kind: 'staff', id: EXAMPLE.staff.id, name: EXAMPLE.staff.name },
  body: 'Hello Jane, your new schedule starts next Tuesday. The care plan is attached.',
  sentAt: EXAMPLE.createdAt,
  readAt: EXAMPLE.readAt,
  attachments: [ATTACHMENT_EXAMPLE],
};

/** The patron's reply on the example thread. */
const REPLY_EXAMPLE: Static<typeof Message> = {
  id: EXAMPLE.replyId,
  threadId: EXAMPLE.threadId,
  author: { kind: 'patron', id: 'pat-1', name: EXAMPLE.patron.displayName },
  body: 'Thanks, Tuesday works for me.',
  sentAt: EXAMPLE.repliedAt,
  readAt: null,
  attachments: [],
};

export const READ_RECEIPT_EXAMPLE: Static<typeof ReadReceipt> = {
  threadId: EXAMPLE.threadId,
  readAt: EXAMPLE.readAt,
  messageIds: [EXAMPLE.messageId],
};

export const ThreadId = Uuid({ description: 'The thread id', examples: [EXAMPLE.threadId] });
const ThreadParams = Type.Object({ threadId: ThreadId }, { additionalProperties: false });

export const messageRoutes: FastifyPluginAsyncTypebox<{ service: MessagesService }> = async (app, { service }) => {
  const roles = ['staff', 'admin', 'patron'] as const;

  app.get(
    '/v1/threads/:threadId/messages',
    {
      onRequest: app.authorize(roles, 'message.listed'),
      schema: {
        operationId: 'listMessages',
        tags: ['messages'],
        summary: 'Messages of a thread, oldest first',
        description: 'Keyset-paged. Each message carries sentAt and readAt. Audited as message.listed.',
        params: ThreadParams,
        querystring: Type.Object(PageQuery, { additionalProperties: false }),
        response: { 200: ref(MessagePage, { examples: [{ items: [MESSAGE_EXAMPLE, REPLY_EXAMPLE], nextCursor: null }] }), ...problems(400, 401, 403, 404, 410) },
      },
    },
    async (req) =>
      service.list(requestContext(req), req.params.threadId, { cursor: req.query.cursor, limit: req.query.limit ?? DEFAULT_PAGE_SIZE }),
  );

  app.post(
    '/v1/threads/:threadId/messages',
    {
      onRequest: app.authorize(roles, 'message.sent'),
      schema: {
        operationId: 'sendMessage',
        tags: ['messages'],
        summary: 'Send a message or reply',
        description:
          'A patron gets 403 when reply is not allowed or the thread is closed. Accepts Idempotency-Key. Attachments reference ' +
          'existing documents (a patron: documents it uploaded to its own record); refusals are 422 attachment_*.',
        params: ThreadParams,
        headers: IdempotencyHeaders,
        body: ref(SendMessage, { examples: [{ body: REPLY_EXAMPLE.body }] }),
        response: { 201: ref(Message, { examples: [REPLY_EXAMPLE] }), ...problems(400, 401, 403, 404, 410, 422) },
      },
    },
    async (req, reply) => {
      const sent = await service.send(requestContext(req), req.params.threadId, req.body, req.headers['idempotency-key']);
      if (sent.replayed) reply.header('idempotent-replayed', 'true');
      return reply.status(201).send(sent.message);
    },
  );

  app.post(
    '/v1/threads/:threadId/read',
    {
      onRequest: app.authorize(roles, 'message.read'),
      schema: {
        operationId: 'markThreadRead',
        tags: ['messages'],
        summary: "Mark the other side's messages read",
        description: "Sets readAt once on the other side's messages up to upTo; a staff read never marks a staff message.",
        params: ThreadParams,
        body: ref(MarkRead, { examples: [{ upTo: EXAMPLE.messageId }] }),
        response: { 200: ref(ReadReceipt, { examples: [READ_RECEIPT_EXAMPLE] }), ...problems(400, 401, 403, 404, 410, 422) },
      },
    },
    async (req) => service.markRead(requestContext(req), req.params.threadId, req.body.upTo),
  );
};
