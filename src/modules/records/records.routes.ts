import { Type, type Static } from 'typebox';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { requestContext } from '../../plugins/auth.js';
import { problems, ref, recordExternalId, StringEnum } from '../../lib/schemas.js';
import { EXAMPLE } from '../../lib/examples.js';
import type { RecordKind } from '../../lib/context.js';
import type { RecordsService } from './records.service.js';

const Phone = Type.String({ minLength: 3, maxLength: 32, pattern: '^\\+?[0-9 ().\\/-]*[0-9][0-9 ().\\/-]*$' });

export const RecordUpsert = Type.Object(
  {
    displayName: Type.String({ minLength: 1, maxLength: 200 }),
    email: Type.Optional(Type.Union([Type.String({ format: 'email', maxLength: 254 }), Type.Null()])),
    dateOfBirth: Type.Optional(Type.Union([Type.String({ format: 'date', pattern: '^\\d{4}-\\d{2}-\\d{2}$' }), Type.Null()])),
    phone: Type.Optional(Type.Union([Phone, Type.Null()])),
  },
  { $id: 'RecordUpsert', additionalProperties: false, description: 'Every field is PHI and is encrypted at rest' },
);

export const PatronRecord = Type.Object(
  {
    kind: StringEnum(['customer', 'volunteer'] as const),
    id: Type.String({ description: "The platform's own id for the record" }),
    displayName: Type.String(),
    email: Type.Union([Type.String(), Type.Null()]),
    dateOfBirth: Type.Union([Type.String({ format: 'date' }), Type.Null()]),
    phone: Type.Union([Type.String(), Type.Null()]),
    createdAt: Type.String({ format: 'date-time' }),
    updatedAt: Type.String({ format: 'date-time' }),
  },
  { $id: 'Record', additionalProperties: false },
);

export const recordSchemas = [RecordUpsert, PatronRecord];

/** Made-up people (example.org addresses, 555-01xx numbers): examples only, never real PHI. */
const RECORD_EXAMPLES: Record<RecordKind, { upsert: Static<typeof RecordUpsert>; record: Static<typeof PatronRecord> }> = {
  customer: {
    upsert: { ...EXAMPLE.patron },
    record: { kind: 'customer', id: EXAMPLE.customerId, ...EXAMPLE.patron, createdAt: EXAMPLE.createdAt, updatedAt: EXAMPLE.createdAt },
  },
  volunteer: {
    upsert: { ...EXAMPLE.volunteer },
    record: { kind: 'volunteer', id: EXAMPLE.volunteerId, ...EXAMPLE.volunteer, createdAt: EXAMPLE.createdAt, updatedAt: EXAMPLE.createdAt },
  },
};

const kindRoutes = (kind: RecordKind) => {
  const Kind = kind === 'customer' ? 'Customer' : 'Volunteer';
  const param = `${kind}Id` as const;
  const examples = RECORD_EXAMPLES[kind];
  const RecordId = recordExternalId({ description: `The platform's own id of the ${kind} record`, examples: [examples.record.id] });
  const Params = Type.Object({ [param]: RecordId } as Record<string, typeof RecordId>, { additionalProperties: false });
  const plugin: FastifyPluginAsyncTypebox<{ service: RecordsService }> = async (app, { service }) => {
    app.put(
      `/v1/${kind}s/:${param}`,
      {
        onRequest: app.authorize(['integration', 'staff', 'admin'], 'record.upserted'),
        schema: {
          operationId: `upsert${Kind}`,
          tags: ['records'],
          summary: `Create or replace a ${kind} record`,
          description: `Integrations, staff and admins write ${kind} records. Answers 201 when created, 200 when replaced.`,
          params: Params,
          body: ref(RecordUpsert, { examples: [examples.upsert] }),
          response: {
            200: ref(PatronRecord, { examples: [{ ...examples.record, updatedAt: '2025-03-02T14:20:00.000Z' }] }),
            201: ref(PatronRecord, { examples: [examples.record] }),
            ...problems(400, 401, 403),
          },
        },
      },
      async (req, reply) => {
        const externalId = (req.params as Record<string, string>)[param]!;
        const result = await service.upsert(requestContext(req), kind, externalId, req.body);
        return reply.status(result.created ? 201 : 200).send(result.record);
      },
    );
    app.get(
      `/v1/${kind}s/:${param}`,
      {
        onRequest: app.authorize(['staff', 'admin'], 'record.viewed'),
        schema: {
          operationId: `get${Kind}`,
          tags: ['records'],
          summary: `Read a ${kind} record`,
          description: 'Staff and admins only. The read is audited.',
          params: Params,
          response: { 200: ref(PatronRecord, { examples: [examples.record] }), ...problems(400, 401, 403, 404) },
        },
      },
      async (req) => service.get(requestContext(req), kind, (req.params as Record<string, string>)[param]!),
    );
  };
  return plugin;
};

export const customerRecordRoutes = kindRoutes('customer');
export const volunteerRecordRoutes = kindRoutes('volunteer');
