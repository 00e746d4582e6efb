import { Type, type Static } from 'typebox';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { requestContext } from '../../plugins/auth.js';
import { IdempotencyHeaders, NextCursor, PageQuery, problems, RecordExternalId, recordExternalId, RecordKind, ref, StringEnum, Uuid } from '../../lib/schemas.js';
import { DEFAULT_PAGE_SIZE } from '../../lib/pagination.js';
import { EXAMPLE } from '../../lib/examples.js';
import type { RecordKind as Kind } from '../../lib/context.js';
import { Message, MESSAGE_EXAMPLE, ThreadId } from '../messages/messages.routes.js';
import { AttachmentRefs } from '../documents/documents.routes.js';
import type { ThreadsService } from './threads.service.js';

export const RecordRef = Type.Object(
  { kind: RecordKind, id: RecordExternalId },
  { $id: 'RecordRef', additionalProperties: false, description: 'A customer or volunteer record, by the platform id' },
);

export const Thread = Type.Object(
  {
    id: Uuid(),
    record: ref(RecordRef),
    subject: Type.String(),
    replyAllowed: Type.Boolean(),
    state: StringEnum(['open', 'closed'] as const),
    createdBy: Type.Object({ id: Type.String(), name: Type.Union([Type.String(), Type.Null()]) }, { additionalProperties: false }),
    createdAt: Type.String({ format: 'date-time' }),
    updatedAt: Type.String({ format: 'date-time' }),
    lastActivityAt: Type.String({ format: 'date-time' }),
    unreadCount: Type.Integer({ minimum: 0, description: "Messages from the other side that the caller's side has not read" }),
  },
  { $id: 'Thread', additionalProperties: false },
);

export const ThreadPage = Type.Object(
  { items: Type.Array(ref(Thread)), nextCursor: NextCursor },
  { $id: 'ThreadPage', additionalProperties: false },
);

export const CreateThread = Type.Object(
  {
    record: ref(RecordRef),
    subject: Type.String({ minLength: 1, maxLength: 200 }),
    body: Type.String({ minLength: 1, maxLength: 20000 }),
    replyAllowed: Type.Boolean(),
    attachments: Type.Optional(ref(AttachmentRefs)),
  },
  { $id: 'CreateThread', additionalProperties: false },
);

export const ThreadCreated = Type.Object(
  { thread: ref(Thread), message: ref(Message) },
  { $id: 'ThreadCreated', additionalProperties: false },
);

export const ThreadPatch = Type.Object(
  { replyAllowed: Type.Optional(Type.Boolean()), state: Type.Optional(StringEnum(['open', 'closed'] as const)) },
  { $id: 'ThreadPatch', additionalProperties: false, minProperties: 1 },
);

export const ThreadDeleted = Type.Object(
  { id: Uuid(), deletedAt: Type.String({ format: 'date-time' }) },
  { $id: 'ThreadDeleted', additionalProperties: false },
);

export const threadSchemas = [RecordRef, Thread, ThreadPage, CreateThread, ThreadCreated, ThreadPatch, ThreadDeleted];

export const THREAD_EXAMPLE: Static<typeof Thread> = {
  id: EXAMPLE.threadId,
  record: { kind: 'customer', id: EXAMPLE.customerId },
  subject: 'Your new schedule',
  replyAllowed: true,
  state: 'open',
  createdBy: { id: EXAMPLE.staff.id, name: EXAMPLE.staff.name },
  createdAt: EXAMPLE.createdAt,
  updatedAt: EXAMPLE.createdAt,
  lastActivityAt: EXAMPLE.repliedAt,
  unreadCount: 0,
};

const THREAD_PAGE_EXAMPLE: Static<typeof ThreadPage> = { items: [{ ...THREAD_EXAMPLE, unreadCount: 1 }], nextCursor: null };

const ThreadParams = Type.Object({ threadId: ThreadId }, { additionalProperties: false });
const ListQuery = Type.Object(PageQuery, { additionalProperties: false });

export const threadRoutes: FastifyPluginAsyncTypebox<{ service: ThreadsService }> = async (app, { service }) => {
  app.post(
    '/v1/threads',
    {
      onRequest: app.authorize(['staff', 'admin'], 'thread.created'),
      schema: {
        operationId: 'createThread',
        tags: ['threads'],
        summary: 'Open a thread on a record, with its first message',
        description: 'Staff and admins only: patrons and external recipients never start a conversation. Accepts Idempotency-Key.',
        headers: IdempotencyHeaders,
        body: ref(CreateThread, {
          examples: [
            {
              record: THREAD_EXAMPLE.record,
              subject: THREAD_EXAMPLE.subject,
              body: MESSAGE_EXAMPLE.body,
              replyAllowed: true,
              attachments: [{ documentId: EXAMPLE.documentId }],
            },
          ],
        }),
        response: {
          201: ref(ThreadCreated, {
            examples: [{ thread: { ...THREAD_EXAMPLE, lastActivityAt: EXAMPLE.createdAt }, message: { ...MESSAGE_EXAMPLE, readAt: null } }],
          }),
          ...problems(400, 401, 403, 422),
        },
      },
    },
    async (req, reply) => {
      const created = await service.create(requestContext(req), req.body, req.headers['idempotency-key']);
      if (created.replayed) reply.header('idempotent-replayed', 'true');
      return reply.status(201).send({ thread: created.thread, message: created.message });
    },
  );

  app.get(
    '/v1/threads/:threadId',
    {
      onRequest: app.authorize(['staff', 'admin', 'patron'], 'thread.opened'),
      schema: {
        operationId: 'getThread',
        tags: ['threads'],
        summary: 'Open a thread',
        description: 'Audited as thread.opened. A patron reaches only threads on its own record.',
        params: ThreadParams,
        response: { 200: ref(Thread, { examples: [THREAD_EXAMPLE] }), ...problems(400, 401, 403, 404, 410) },
      },
    },
    async (req) => service.open(requestContext(req), req.params.threadId),
  );

  app.patch(
    '/v1/threads/:threadId',
    {
      onRequest: app.authorize(['staff', 'admin'], 'thread.updated'),
      schema: {
        operationId: 'updateThread',
        tags: ['threads'],
        summary: 'Allow or stop replies, close or reopen a thread',
        description: 'Staff and admins only.',
        params: ThreadParams,
        body: ref(ThreadPatch, { examples: [{ replyAllowed: false, state: 'closed' }] }),
        response: {
          200: ref(Thread, { examples: [{ ...THREAD_EXAMPLE, replyAllowed: false, state: 'closed', updatedAt: '2025-01-15T08:00:00.000Z' }] }),
          ...problems(400, 401, 403, 404, 410),
        },
      },
    },
    async (req) => service.update(requestContext(req), req.params.threadId, req.body),
  );

  app.delete(
    '/v1/threads/:threadId',
    {
      onRequest: app.authorize(['staff', 'admin'], 'thread.deleted'),
      schema: {
        operationId: 'deleteThread',
        tags: ['threads'],
        summary: 'Delete a thread after its retention date',
        description:
          'Refused (409) until the last activity plus the organization retention period. After it, the thread key, subject ' +
          'and message bodies are destroyed (crypto-shredding); ids, timestamps and the audit trail stay, and reads answer 410.',
        params: ThreadParams,
        response: { 200: ref(ThreadDeleted, { examples: [{ id: EXAMPLE.threadId, deletedAt: '2032-02-01T03:00:00.000Z' }] }), ...problems(400, 401, 403, 404, 409) },
      },
    },
    async (req) => service.remove(requestContext(req), req.params.threadId),
  );

  for (const kind of ['customer', 'volunteer'] as const satisfies readonly Kind[]) {
    const Kind = kind === 'customer' ? 'Customer' : 'Volunteer';
    app.get(
      `/v1/${kind}s/:recordId/threads`,
      {
        onRequest: app.authorize(['staff', 'admin', 'patron'], 'thread.listed'),
        schema: {
          operationId: `list${Kind}Threads`,
          tags: ['threads'],
          summary: `The Secure Messages tab of a ${kind}`,
          description: "Newest activity first, with unread counts for the caller's side. A patron sees only its own record.",
          params: Type.Object(
            {
              recordId: recordExternalId({
                description: `The platform's own id of the ${kind} record`,
                examples: [kind === 'customer' ? EXAMPLE.customerId : EXAMPLE.volunteerId],
              }),
            },
            { additionalProperties: false },
          ),
          querystring: ListQuery,
          response: {
            200: ref(ThreadPage, {
              examples: [
                kind === 'customer'
                  ? THREAD_PAGE_EXAMPLE
                  : { items: [{ ...THREAD_EXAMPLE, record: { kind: 'volunteer', id: EXAMPLE.volunteerId } }], nextCursor: null },
              ],
            }),
            ...problems(400, 401, 403, 404),
          },
        },
      },
      async (req) =>
        service.listForRecord(requestContext(req), kind, req.params.recordId, {
          cursor: req.query.cursor,
          limit: req.query.limit ?? DEFAULT_PAGE_SIZE,
        }),
    );
  }

  app.get(
    '/v1/me/threads',
    {
      onRequest: app.authorize(['patron'], 'thread.listed'),
      schema: {
        operationId: 'listMyThreads',
        tags: ['threads'],
        summary: "A patron's own threads",
        description: 'Patrons only: the threads on the record named by the token `rec` claim.',
        querystring: ListQuery,
        response: { 200: ref(ThreadPage, { examples: [THREAD_PAGE_EXAMPLE] }), ...problems(400, 401, 403) },
      },
    },
    async (req) => service.listMine(requestContext(req), { cursor: req.query.cursor, limit: req.query.limit ?? DEFAULT_PAGE_SIZE }),
  );
};
