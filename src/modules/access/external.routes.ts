/**
 * The routes an external recipient uses, with an access-link session only. Each one works on
 * the single thread the link grants; the thread id never comes from the request.
 */
import { Type, type Static } from 'typebox';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { requestContext } from '../../plugins/auth.js';
import { clearedSessionCookie, sessionCookie, sessionTokenOf } from '../../plugins/external-session.js';
import { receiveUpload } from '../../plugins/uploads.js';
import { PageQuery, problems, ref } from '../../lib/schemas.js';
import { DEFAULT_PAGE_SIZE } from '../../lib/pagination.js';
import { EXAMPLE } from '../../lib/examples.js';
import { sanitizeHeaderText } from '../../lib/text.js';
import { Document, DOCUMENT_EXAMPLE, DocumentId, DocumentUpload, downloadHeaders } from '../documents/documents.routes.js';
import type { DocumentsService } from '../documents/documents.service.js';
import {
  MarkRead,
  Message,
  MESSAGE_EXAMPLE,
  MessagePage,
  READ_RECEIPT_EXAMPLE,
  ReadReceipt,
  SendMessage,
} from '../messages/messages.routes.js';
import type { MessagesService } from '../messages/messages.service.js';
import { Thread, THREAD_EXAMPLE } from '../threads/threads.routes.js';
import type { ThreadsService } from '../threads/threads.service.js';
import type { AccessService } from './access.service.js';

export const OpenSession = Type.Object(
  {
    token: Type.String({ minLength: 1, maxLength: 128, description: 'The token from the link fragment (#token=…)' }),
    dateOfBirth: Type.Optional(Type.String({ maxLength: 32, description: 'YYYY-MM-DD or MM/DD/YYYY, when the link asks for it' })),
    phone: Type.Optional(Type.String({ maxLength: 32, description: 'Any format; compared by its digits' })),
  },
  { $id: 'OpenSession', additionalProperties: false },
);

export const ExternalSession = Type.Object(
  {
    sessionToken: Type.String({ description: 'Also set as the __Host-sc_ext cookie; send as a bearer token from non-browser clients' }),
    expiresAt: Type.String({ format: 'date-time', description: 'The absolute end; 30 idle minutes end it sooner' }),
    thread: ref(Thread),
  },
  { $id: 'ExternalSession', additionalProperties: false },
);

export const externalSchemas = [OpenSession, ExternalSession];

/** The recipient's reply, with a document it uploaded (it lands on the thread's record). */
const EXTERNAL_REPLY_EXAMPLE: Static<typeof Message> = {
  ...MESSAGE_EXAMPLE,
  id: EXAMPLE.replyId,
  author: { kind: 'external', id: EXAMPLE.linkId, name: EXAMPLE.recipientEmail },
  body: 'Thank you, the signed consent form is attached.',
  sentAt: EXAMPLE.repliedAt,
  readAt: null,
  attachments: [{ id: EXAMPLE.documentId, name: 'consent-signed.pdf', mediaType: 'application/pdf', size: 96_512, deleted: false }],
};

interface Services {
  access: AccessService;
  threads: ThreadsService;
  messages: MessagesService;
  documents: DocumentsService;
  perIpPerMinute: number;
  keyGenerator(ip: string): string;
}

const externalSecurity: Record<string, string[]>[] = [{ externalSession: [] }, { externalCookie: [] }];

export const externalRoutes: FastifyPluginAsyncTypebox<Services> = async (app, services) => {
  const { access, threads, messages, documents } = services;
  const threadOf = (actor: { threadId?: string }) => actor.threadId!;

  app.post(
    '/v1/external/sessions',
    {
      config: { rateLimit: { max: services.perIpPerMinute, timeWindow: 60_000, keyGenerator: (req) => services.keyGenerator(req.ip) } },
      schema: {
        operationId: 'openExternalSession',
        tags: ['external access'],
        summary: 'Exchange a link token (and the required checks) for a session',
        description:
          'Rate limited per IP (429 with Retry-After). Unknown, expired, revoked and locked links and failed checks all ' +
          'answer the same 401 external_access_denied.',
        security: [],
        body: ref(OpenSession, { examples: [{ token: 'q9LmT2xV0b7sYc4NfR8wZk1EaH3uJ6pD', dateOfBirth: '1980-02-03' }] }),
        response: {
          201: ref(ExternalSession, {
            examples: [
              {
                sessionToken: 'es_4f9c2a7b1e8d3065c2b9a7f41d0e6c35',
                expiresAt: '2025-01-14T13:05:00.000Z',
                thread: { ...THREAD_EXAMPLE, unreadCount: 1 },
              },
            ],
          }),
          ...problems(400, 401, 429, 503),
        },
      },
    },
    async (req, reply) => {
      const info = { ip: req.ip, userAgent: sanitizeHeaderText(req.headers['user-agent'], 256), requestId: req.id };
      const session = await access.openSession(info, req.body);
      return reply.status(201).header('set-cookie', sessionCookie(session.sessionToken)).send(session);
    },
  );

  app.delete(
    '/v1/external/session',
    {
      onRequest: app.authorizeExternal,
      schema: {
        operationId: 'endExternalSession',
        tags: ['external access'],
        summary: 'Sign out: end this session',
        description: 'The link itself stays valid.',
        security: externalSecurity,
        response: { 204: { description: 'The session has ended', type: 'null' }, ...problems(401) },
      },
    },
    async (req, reply) => {
      await access.endSession(sessionTokenOf(req)!);
      return reply.status(204).header('set-cookie', clearedSessionCookie).send(null as never);
    },
  );

  app.get(
    '/v1/external/thread',
    {
      onRequest: app.authorizeExternal,
      schema: {
        operationId: 'getExternalThread',
        tags: ['external access'],
        summary: 'The thread this session may read',
        description: 'Audited as thread.opened.',
        security: externalSecurity,
        response: { 200: ref(Thread, { examples: [{ ...THREAD_EXAMPLE, unreadCount: 1 }] }), ...problems(401) },
      },
    },
    async (req) => {
      const ctx = requestContext(req);
      return threads.open(ctx, threadOf(ctx.actor));
    },
  );

  app.get(
    '/v1/external/messages',
    {
      onRequest: app.authorizeExternal,
      schema: {
        operationId: 'listExternalMessages',
        tags: ['external access'],
        summary: 'The messages of the thread, oldest first',
        description: 'Keyset-paged, with read receipts and attachments.',
        security: externalSecurity,
        querystring: Type.Object(PageQuery, { additionalProperties: false }),
        response: { 200: ref(MessagePage, { examples: [{ items: [MESSAGE_EXAMPLE, EXTERNAL_REPLY_EXAMPLE], nextCursor: null }] }), ...problems(400, 401) },
      },
    },
    async (req) => {
      const ctx = requestContext(req);
      return messages.list(ctx, threadOf(ctx.actor), { cursor: req.query.cursor, limit: req.query.limit ?? DEFAULT_PAGE_SIZE });
    },
  );

  app.post(
    '/v1/external/messages',
    {
      onRequest: app.authorizeExternal,
      schema: {
        operationId: 'sendExternalMessage',
        tags: ['external access'],
        summary: 'Reply on the thread',
        description: '403 unless staff allowed replies and the thread is open. Attachments: documents uploaded with POST /v1/external/documents.',
        security: externalSecurity,
        body: ref(SendMessage, { examples: [{ body: EXTERNAL_REPLY_EXAMPLE.body, attachments: [{ documentId: EXAMPLE.documentId }] }] }),
        response: { 201: ref(Message, { examples: [EXTERNAL_REPLY_EXAMPLE] }), ...problems(400, 401, 403, 422) },
      },
    },
    async (req, reply) => {
      const ctx = requestContext(req);
      return reply.status(201).send((await messages.send(ctx, threadOf(ctx.actor), req.body)).message);
    },
  );

  app.post(
    '/v1/external/read',
    {
      onRequest: app.authorizeExternal,
      schema: {
        operationId: 'markExternalRead',
        tags: ['external access'],
        summary: "Mark staff's messages read",
        description: 'Sets readAt once on staff messages up to upTo.',
        security: externalSecurity,
        body: ref(MarkRead, { examples: [{ upTo: EXAMPLE.messageId }] }),
        response: { 200: ref(ReadReceipt, { examples: [READ_RECEIPT_EXAMPLE] }), ...problems(400, 401, 422) },
      },
    },
    async (req) => {
      const ctx = requestContext(req);
      return messages.markRead(ctx, threadOf(ctx.actor), req.body.upTo);
    },
  );

  app.post(
    '/v1/external/documents',
    {
      onRequest: app.authorizeExternal,
      config: { multipartForm: DocumentUpload },
      schema: {
        operationId: 'uploadExternalDocument',
        tags: ['external access'],
        summary: "Upload a file for a reply (it lands on the thread's record)",
        description: 'The same limits as every upload: 25 MiB, types judged by content (415 otherwise). Then attach it by id.',
        security: externalSecurity,
        consumes: ['multipart/form-data'],
        response: {
          201: ref(Document, {
            examples: [
              {
                ...DOCUMENT_EXAMPLE,
                name: 'consent-signed.pdf',
                size: 96_512,
                source: 'external_reply',
                createdBy: { kind: 'external', id: EXAMPLE.linkId },
              },
            ],
          }),
          ...problems(400, 401, 413, 415),
        },
      },
    },
    async (req, reply) => {
      const upload = await receiveUpload(req);
      return reply.status(201).send(await documents.upload(requestContext(req), { kind: 'thread-record' }, upload));
    },
  );

  app.get(
    '/v1/external/documents/:documentId/content',
    {
      onRequest: app.authorizeExternal,
      schema: {
        operationId: 'downloadExternalDocument',
        tags: ['external access'],
        summary: 'Download a document attached in this thread',
        description: 'Only documents attached to messages of this thread (or uploaded by this recipient); anything else is 404.',
        security: externalSecurity,
        params: Type.Object({ documentId: DocumentId }, { additionalProperties: false }),
        response: {
          200: { description: "The file, sent with the document's own media type", content: { '*/*': { schema: { type: 'string', format: 'binary' } } } },
          ...problems(400, 401, 404, 410),
        },
      },
    },
    async (req, reply) => {
      const { document, body } = await documents.download(requestContext(req), req.params.documentId);
      return reply.headers(downloadHeaders(document)).send(body as unknown as string);
    },
  );
};
