import { Type, type Static } from 'typebox';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { requestContext } from '../../plugins/auth.js';
import { NextCursor, PageQuery, problems, ref, StringEnum, Uuid } from '../../lib/schemas.js';
import { DEFAULT_PAGE_SIZE } from '../../lib/pagination.js';
import { EXAMPLE } from '../../lib/examples.js';
import { ThreadId } from '../messages/messages.routes.js';
import type { AccessService } from './access.service.js';

export const AccessLink = Type.Object(
  {
    id: Uuid(),
    threadId: Uuid(),
    email: Type.String(),
    state: StringEnum(['active', 'expired', 'revoked', 'locked'] as const),
    verify: Type.Object({ dateOfBirth: Type.Boolean(), phone: Type.Boolean() }, { additionalProperties: false }),
    expiresAt: Type.String({ format: 'date-time' }),
    createdBy: Type.Object({ id: Type.String(), name: Type.Union([Type.String(), Type.Null()]) }, { additionalProperties: false }),
    createdAt: Type.String({ format: 'date-time' }),
    lastUsedAt: Type.Union([Type.String({ format: 'date-time' }), Type.Null()]),
    failureCount: Type.Integer({ minimum: 0, description: 'Failed identity checks, in total' }),
    lockedUntil: Type.Union([Type.String({ format: 'date-time' }), Type.Null()], { description: 'Set during a temporary lockout' }),
    revokedAt: Type.Union([Type.String({ format: 'date-time' }), Type.Null()]),
  },
  { $id: 'AccessLink', additionalProperties: false, description: 'Never contains the token: it exists only in the email' },
);

export const AccessLinkPage = Type.Object(
  { items: Type.Array(ref(AccessLink)), nextCursor: NextCursor },
  { $id: 'AccessLinkPage', additionalProperties: false },
);

export const GrantAccess = Type.Object(
  {
    email: Type.String({ format: 'email', maxLength: 254 }),
    expiresIn: Type.Optional(StringEnum(['3d', '7d', '30d'] as const)),
    expiresAt: Type.Optional(Type.String({ format: 'date-time', description: 'Instead of expiresIn; at most 90 days ahead' })),
    verify: Type.Object({ dateOfBirth: Type.Boolean(), phone: Type.Boolean() }, { additionalProperties: false }),
  },
  { $id: 'GrantAccess', additionalProperties: false },
);

export const accessSchemas = [AccessLink, AccessLinkPage, GrantAccess];

const ACCESS_LINK_EXAMPLE: Static<typeof AccessLink> = {
  id: EXAMPLE.linkId,
  threadId: EXAMPLE.threadId,
  email: EXAMPLE.recipientEmail,
  state: 'active',
  verify: { dateOfBirth: true, phone: false },
  expiresAt: '2025-01-21T09:45:00.000Z',
  createdBy: { id: EXAMPLE.staff.id, name: EXAMPLE.staff.name },
  createdAt: '2025-01-14T09:45:00.000Z',
  lastUsedAt: null,
  failureCount: 0,
  lockedUntil: null,
  revokedAt: null,
};

const ThreadParams = Type.Object({ threadId: ThreadId }, { additionalProperties: false });

export const accessRoutes: FastifyPluginAsyncTypebox<{ service: AccessService }> = async (app, { service }) => {
  app.post(
    '/v1/threads/:threadId/access-links',
    {
      onRequest: app.authorize(['staff', 'admin'], 'access_link.granted'),
      schema: {
        operationId: 'grantAccessLink',
        tags: ['external access'],
        summary: 'Email a link that opens this thread without an account',
        description:
          'Staff and admins. The mail goes out through the outbox (an SMTP outage delays it, never loses it) and holds no ' +
          'PHI. 422 verification_data_missing when a requested check has no data on the record.',
        params: ThreadParams,
        body: ref(GrantAccess, { examples: [{ email: EXAMPLE.recipientEmail, expiresIn: '7d', verify: { dateOfBirth: true, phone: false } }] }),
        response: { 201: ref(AccessLink, { examples: [ACCESS_LINK_EXAMPLE] }), ...problems(400, 401, 403, 404, 410, 422) },
      },
    },
    async (req, reply) => reply.status(201).send(await service.grant(requestContext(req), req.params.threadId, req.body)),
  );

  app.get(
    '/v1/threads/:threadId/access-links',
    {
      onRequest: app.authorize(['staff', 'admin'], 'access_link.listed'),
      schema: {
        operationId: 'listAccessLinks',
        tags: ['external access'],
        summary: "A thread's access links and their state",
        description: 'Staff and admins. Newest first.',
        params: ThreadParams,
        querystring: Type.Object(PageQuery, { additionalProperties: false }),
        response: {
          200: ref(AccessLinkPage, {
            examples: [{ items: [{ ...ACCESS_LINK_EXAMPLE, lastUsedAt: '2025-01-14T12:35:00.000Z' }], nextCursor: null }],
          }),
          ...problems(400, 401, 403, 404, 410),
        },
      },
    },
    async (req) => service.list(requestContext(req), req.params.threadId, { cursor: req.query.cursor, limit: req.query.limit ?? DEFAULT_PAGE_SIZE }),
  );

  app.delete(
    '/v1/access-links/:linkId',
    {
      onRequest: app.authorize(['staff', 'admin'], 'access_link.revoked'),
      schema: {
        operationId: 'revokeAccessLink',
        tags: ['external access'],
        summary: 'Revoke a link at once',
        description: 'Every session opened through it fails on its next request. Revoking twice is harmless.',
        params: Type.Object({ linkId: Uuid({ description: 'The access link id', examples: [EXAMPLE.linkId] }) }, { additionalProperties: false }),
        response: {
          200: ref(AccessLink, { examples: [{ ...ACCESS_LINK_EXAMPLE, state: 'revoked', revokedAt: '2025-01-15T08:10:00.000Z' }] }),
          ...problems(400, 401, 403, 404),
        },
      },
    },
    async (req) => service.revoke(requestContext(req), req.params.linkId),
  );
};
