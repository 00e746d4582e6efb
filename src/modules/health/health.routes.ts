import { Type } from 'typebox';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { AppError } from '../../lib/errors.js';
import { problems, ref } from '../../lib/schemas.js';

export const HealthStatus = Type.Object(
  { status: Type.String({ description: '`ok` from /healthz, `ready` from /readyz' }) },
  { $id: 'HealthStatus', additionalProperties: false },
);

export const healthSchemas = [HealthStatus];
const READY_TIMEOUT_MS = 2000;

export const healthRoutes: FastifyPluginAsyncTypebox<{ ping(): Promise<void> }> = async (app, { ping }) => {
  // Registered here, for these routes, unless the app already registers healthSchemas with
  // the other named schemas; the contract lists it either way.
  if (!app.getSchema('HealthStatus')) app.addSchema(HealthStatus);
  app.get(
    '/healthz',
    {
      schema: {
        operationId: 'health',
        tags: ['operations'],
        summary: 'Liveness',
        description: 'Answers 200 while the process serves requests.',
        security: [],
        response: { 200: ref(HealthStatus, { examples: [{ status: 'ok' }] }) },
      },
    },
    async () => ({ status: 'ok' }),
  );

  app.get(
    '/readyz',
    {
      schema: {
        operationId: 'ready',
        tags: ['operations'],
        summary: 'Readiness: the database answers',
        description: 'Answers 503 when the database does not answer within 2 seconds.',
        security: [],
        response: { 200: ref(HealthStatus, { examples: [{ status: 'ready' }] }), ...problems(503) },
      },
    },
    async () => {
      let timer: NodeJS.Timeout | undefined;
      try {
        await Promise.race([
          ping(),
          new Promise((_, reject) => {
            timer = setTimeout(() => reject(new Error('timeout')), READY_TIMEOUT_MS);
          }),
        ]);
      } catch {
        throw new AppError('service_unavailable', 'The database does not answer');
      } finally {
        clearTimeout(timer);
      }
      return { status: 'ready' };
    },
  );
};
