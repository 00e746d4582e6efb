import { Type, type Static } from 'typebox';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Readable } from 'node:stream';
import { requestContext } from '../../plugins/auth.js';
import { AppError } from '../../lib/errors.js';
import { NO_CONTROL, NextCursor, PageQuery, problems, ref, StringEnum, Uuid } from '../../lib/schemas.js';
import { DEFAULT_PAGE_SIZE, parseInstant } from '../../lib/pagination.js';
import { EXAMPLE } from '../../lib/examples.js';
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
          problem: StringEnum(['hash_mismatch', 'prev_hash_mismatch', 'sequence_gap', 'truncated_before_checkpoint', 'checkpoint_mismatch'] as const),
        },
        { additionalProperties: false },
      ),
      Type.Null(),
    ]),
    head: Type.Object({ seq: Type.Integer(), hash: Type.String() }, { additionalProperties: false }),
  },
  { $id: 'ChainVerification', additionalProperties: false },
);

export const Checkpoint = Type.Object(
  {
    orgId: Type.String({ maxLength: 128 }),
    seq: Type.Integer({ minimum: 0 }),
    hash: Type.String({ pattern: '^[0-9a-f]{64}$' }),
    at: Type.String({ format: 'date-time' }),
    signature: Type.String({ pattern: '^[0-9a-f]{64}$', description: 'HMAC-SHA256 under AUDIT_CHECKPOINT_KEY' }),
  },
  { $id: 'AuditCheckpoint', additionalProperties: false, description: "A signed statement of an organization's chain head" },
);

export const VerifyAgainstCheckpoint = Type.Object(
  { checkpoint: ref(Checkpoint) },
  { $id: 'VerifyAgainstCheckpoint', additionalProperties: false },
);

export const auditSchemas = [AuditEvent, AuditEventPage, ChainVerification, Checkpoint, VerifyAgainstCheckpoint];

/** The filters shared by the list and the export. */
const FILTERS = {
  recordId: Type.Optional(
    Type.String({ maxLength: 128, pattern: NO_CONTROL, description: 'Events about this customer or volunteer record (its platform id)', examples: [EXAMPLE.customerId] }),
  ),
  threadId: Type.Optional(Uuid({ description: 'Events about this thread', examples: [EXAMPLE.threadId] })),
  actorId: Type.Optional(Type.String({ maxLength: 128, pattern: NO_CONTROL, description: 'Events by this actor (staff id, record id or access link id)' })),
  action: Type.Optional(Type.String({ maxLength: 64, pattern: NO_CONTROL, description: 'One action, e.g. thread.opened or verification.failed', examples: ['thread.opened'] })),
  outcome: Type.Optional(StringEnum(['success', 'denied', 'failure', 'error'] as const, { description: 'Only events with this outcome' })),
  from: Type.Optional(Type.String({ format: 'date-time', description: 'Events at or after this instant' })),
  to: Type.Optional(Type.String({ format: 'date-time', description: 'Events before this instant' })),
};

/** A made-up event: what an admin sees when a staff member opens a thread. */
const AUDIT_EVENT_EXAMPLE: Static<typeof AuditEvent> = {
  id: EXAMPLE.auditEventId,
  seq: 42,
  occurredAt: EXAMPLE.createdAt,
  actor: { kind: 'staff', id: EXAMPLE.staff.id, name: EXAMPLE.staff.name },
  action: 'thread.opened',
  outcome: 'success',
  record: { kind: 'customer', id: EXAMPLE.customerId },
  threadId: EXAMPLE.threadId,
  messageId: null,
  documentId: null,
  linkId: null,
  ip: '203.0.113.7',
  userAgent: 'Mozilla/5.0',
  requestId: 'req-1a2b',
  reason: null,
  hash: EXAMPLE.hash,
};
const VERIFICATION_EXAMPLE: Static<typeof ChainVerification> = { valid: true, checked: 42, firstBreak: null, head: { seq: 42, hash: EXAMPLE.hash } };
const CHECKPOINT_EXAMPLE: Static<typeof Checkpoint> = {
  orgId: 'org-riverside',
  seq: 42,
  hash: EXAMPLE.hash,
  at: '2025-01-15T00:00:00.000Z',
  signature: EXAMPLE.checksum,
};
const WINDOW_QUERY = {
  from: Type.Optional(Type.String({ format: 'date-time', description: 'Verify from this instant', examples: ['2025-01-01T00:00:00.000Z'] })),
  to: Type.Optional(Type.String({ format: 'date-time', description: 'Verify up to this instant' })),
};

const AuditQuery = Type.Object(
  { ...PageQuery, ...FILTERS, order: Type.Optional(StringEnum(['asc', 'desc'] as const, { default: 'asc', description: 'Chain order (asc, oldest first) or newest first (desc)' })) },
  { additionalProperties: false },
);

const ExportQuery = Type.Object(FILTERS, { additionalProperties: false });

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
        response: { 200: ref(AuditEventPage, { examples: [{ items: [AUDIT_EVENT_EXAMPLE], nextCursor: EXAMPLE.cursor }] }), ...problems(400, 401, 403) },
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
        description:
          'Admins only. Reports the first broken link, if any, and the head reached. With from/to, verifies that window ' +
          "(starting from the first event's own prev_hash).",
        querystring: Type.Object(WINDOW_QUERY, { additionalProperties: false }),
        response: { 200: ref(ChainVerification, { examples: [VERIFICATION_EXAMPLE] }), ...problems(400, 401, 403) },
      },
    },
    async (req) =>
      service.verify(requestContext(req).actor.orgId, { from: parseInstant(req.query.from, 'querystring/from'), to: parseInstant(req.query.to, 'querystring/to') }),
  );

  app.post(
    '/v1/audit-events/verify',
    {
      onRequest: app.authorize(['admin'], 'audit.verified'),
      schema: {
        operationId: 'verifyAuditChainAgainstCheckpoint',
        tags: ['audit'],
        summary: 'Verify the chain against a saved, signed checkpoint',
        description:
          'Admins only. Detects a rewritten chain (the event at the checkpoint position no longer has its hash) and a ' +
          'truncated tail (the chain no longer reaches the checkpoint). 422 when the signature is not valid.',
        body: ref(VerifyAgainstCheckpoint, { examples: [{ checkpoint: CHECKPOINT_EXAMPLE }] }),
        response: { 200: ref(ChainVerification, { examples: [VERIFICATION_EXAMPLE] }), ...problems(400, 401, 403, 422) },
      },
    },
    async (req) => {
      const { checkpoint } = req.body;
      const orgId = requestContext(req).actor.orgId;
      if (checkpoint.orgId !== orgId || !service.verifyCheckpointSignature(checkpoint)) {
        throw new AppError('checkpoint_invalid', 'The checkpoint is not signed by this service for your organization');
      }
      return service.verify(orgId, { checkpoint });
    },
  );

  app.get(
    '/v1/audit-events/checkpoint',
    {
      onRequest: app.authorize(['admin'], 'audit.checkpoint'),
      schema: {
        operationId: 'getAuditCheckpoint',
        tags: ['audit'],
        summary: "A signed checkpoint of the organization's chain head",
        description: 'Admins only. Keep it somewhere the database cannot reach; later, POST it to /v1/audit-events/verify.',
        response: { 200: ref(Checkpoint, { examples: [CHECKPOINT_EXAMPLE] }), ...problems(401, 403) },
      },
    },
    async (req) => {
      const checkpoint = await service.checkpoint(requestContext(req).actor.orgId);
      req.log.info({ auditCheckpoint: checkpoint }, 'audit checkpoint (on demand)');
      return checkpoint;
    },
  );

  app.get(
    '/v1/audit-events/export',
    {
      onRequest: app.authorize(['admin'], 'audit.exported'),
      schema: {
        operationId: 'exportAuditEvents',
        tags: ['audit'],
        summary: 'Stream the audit trail as NDJSON',
        description: 'Admins only. One AuditEvent per line, in chain order, streamed in batches (never buffered whole). Same filters as the list.',
        querystring: ExportQuery,
        response: {
          200: { description: 'NDJSON: one AuditEvent per line', content: { 'application/x-ndjson': { schema: { type: 'string' }, example: `${JSON.stringify(AUDIT_EVENT_EXAMPLE)}\n` } },
          },
          ...problems(400, 401, 403),
        },
      },
    },
    async (req, reply) => {
      const { from, to, ...filters } = req.query;
      const lines = service.exportLines(requestContext(req).actor.orgId, {
        ...filters,
        from: parseInstant(from, 'querystring/from'),
        to: parseInstant(to, 'querystring/to'),
      });
      return reply.type('application/x-ndjson').send(Readable.from(lines) as unknown as string);
    },
  );
};
