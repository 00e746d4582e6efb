import { Type } from 'typebox';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { requestContext } from '../../plugins/auth.js';
import { NO_CONTROL, NextCursor, PageQuery, problems, ref, StringEnum, Uuid } from '../../lib/schemas.js';
import { DEFAULT_PAGE_SIZE, parseInstant } from '../../lib/pagination.js';
import type { AuditService } from './audit.service.js';

const Outcome = StringEnum(['success', 'denied', 'failure', 'error'] as const);
const NullableString = Type.Union([Type.String(), Type.Null()]);

export const AuditEvent = Type.Object(
  {
    id: Uuid(),
    seq: Type.Integer({ description: "Position in the organization's hash chain" }),
    occurredAt: Type.String({ format: 'date-time' }),
    actor: Type.Object(
      { kind: Type.String(), id: NullableString, name: Type.Union([Type.String(), Type.Null()], { description: 'Staff-side actors only' }) },
      { additionalProperties: false },
    ),
    action: Type.String(),
    outcome: Outcome,
    record: Type.Union([Type.Object({ kind: Type.String(), id: Type.String() }, { additionalProperties: false }), Type.Null()]),
    threadId: Type.Union([Uuid(), Type.Null()]),
    messageId: Type.Union([Uuid(), Type.Null()]),
    documentId: Type.Union([Uuid(), Type.Null()]),
    linkId: Type.Union([Uuid(), Type.Null()]),
    ip: NullableString,
    userAgent: NullableString,
    requestId: NullableString,
    reason: Type.Union([Type.String(), Type.Null()], { description: 'A machine reason code, for denials and failures' }),
    hash: Type.String(),
  },
  { $id: 'AuditEvent', additionalProperties: false },
);

export const AuditEventPage = Type.Object(
  { items: Type.Array(ref(AuditEvent)), nextCursor: NextCursor },
  { $id: 'AuditEventPage', additionalProperties: false },
);

export const ChainVerification = Type.Object(
  {
    valid: Type.Boolean(),
    checked: Type.Integer({ description: 'Events verified before the first break (or all of them)' }),
    firstBreak: Type.Union([
      Type.Object(
        {
          seq: Type.Integer(),
          eventId: Type.Union([Uuid(), Type.Null()]),
          problem: StringEnum(['hash_mismatch', 'prev_hash_mismatch', 'sequence_gap'] as const),
        },
        { additionalProperties: false },
      ),
      Type.Null(),
    ]),
    head: Type.Object({ seq: Type.Integer(), hash: Type.String() }, { additionalProperties: false }),
  },
  { $id: 'ChainVerification', additionalProperties: false },
);

export const auditSchemas = [AuditEvent, AuditEventPage, ChainVerification];

const AuditQuery = Type.Object(
  {
    ...PageQuery,
    recordId: Type.Optional(Type.String({ maxLength: 128, pattern: NO_CONTROL })),
    threadId: Type.Optional(Uuid()),
    actorId: Type.Optional(Type.String({ maxLength: 128, pattern: NO_CONTROL })),
    action: Type.Optional(Type.String({ maxLength: 64, pattern: NO_CONTROL })),
    outcome: Type.Optional(Outcome),
    from: Type.Optional(Type.String({ format: 'date-time' })),
    to: Type.Optional(Type.String({ format: 'date-time' })),
    order: Type.Optional(StringEnum(['asc', 'desc'] as const, { default: 'asc' })),
  },
  { additionalProperties: false },
);

export const auditRoutes: FastifyPluginAsyncTypebox<{ service: AuditService }> = async (app, { service }) => {
  app.get(
    '/v1/audit-events',
    {
      onRequest: app.authorize(['admin'], 'audit.listed'),
      schema: {
        operationId: 'listAuditEvents',
        tags: ['audit'],
        summary: "The organization's audit trail",
        description: 'Admins only. Filters combine with AND; pages follow the chain order (oldest first unless order=desc).',
        querystring: AuditQuery,
        response: { 200: ref(AuditEventPage), ...problems(400, 401, 403) },
      },
    },
    async (req) => {
      const { cursor, limit, order, from, to, ...filters } = req.query;
      return service.list(
        requestContext(req),
        { ...filters, from: parseInstant(from, 'querystring/from'), to: parseInstant(to, 'querystring/to') },
        { cursor, limit: limit ?? DEFAULT_PAGE_SIZE, order: order ?? 'asc' },
      );
    },
  );

  app.get(
    '/v1/audit-events/verify',
    {
      onRequest: app.authorize(['admin'], 'audit.verified'),
      schema: {
        operationId: 'verifyAuditChain',
        tags: ['audit'],
        summary: "Recompute the organization's hash chain",
        description: 'Admins only. Reports the first broken link, if any, and the current head.',
        response: { 200: ref(ChainVerification), ...problems(401, 403) },
      },
    },
    async (req) => service.verify(requestContext(req).actor.orgId),
  );
};
