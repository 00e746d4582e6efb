/**
 * The OpenAPI 3.1 contract, built from the route schemas. Named schemas (those with `$id`)
 * become components under their own names; `npm run openapi` writes the result to
 * openapi/openapi.json, and it is served at /openapi.json with Swagger UI at /docs.
 */
import fp from 'fastify-plugin';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import type { TSchema } from 'typebox';

export const OPENAPI_INFO = {
  title: 'SecureCare Messaging API',
  version: '1.0.0',
  description:
    'HIPAA-aware secure messaging: staff-initiated threads on customer and volunteer records, ' +
    'encrypted at rest and audited. Errors are RFC 9457 problem+json with a stable `code`.',
};

export default fp(
  async function swaggerPlugin(app, opts: { schemas: TSchema[] }) {
    for (const schema of opts.schemas) app.addSchema(schema);
    await app.register(swagger, {
      openapi: {
        openapi: '3.1.0',
        info: OPENAPI_INFO,
        servers: [{ url: '/' }],
        components: {
          securitySchemes: {
            bearerAuth: {
              type: 'http',
              scheme: 'bearer',
              bearerFormat: 'JWT',
              description: 'A JWT from the platform identity provider (claims: sub, org, role, name, rec, exp)',
            },
            externalSession: {
              type: 'http',
              scheme: 'bearer',
              description: 'An external session token from POST /v1/external/sessions (non-browser clients)',
            },
            externalCookie: {
              type: 'apiKey',
              in: 'cookie',
              name: '__Host-sc_ext',
              description: 'The same external session, as the HttpOnly cookie browsers hold',
            },
          },
        },
        security: [{ bearerAuth: [] }],
        tags: [
          { name: 'records', description: 'Customer and volunteer records, synced by integrations' },
          { name: 'threads', description: 'Staff-initiated conversations on a record' },
          { name: 'messages', description: 'Messages and read receipts' },
          { name: 'documents', description: 'Document Storage: uploads, the library, record repositories, downloads' },
          { name: 'audit', description: 'The append-only, hash-chained audit trail' },
          { name: 'external access', description: 'Access links for people without an account, and their sessions' },
          { name: 'settings', description: 'Per-organization storage allocation and retention' },
          { name: 'operations', description: 'Health and readiness' },
        ],
      },
      refResolver: {
        buildLocalReference: (json, _baseUri, _fragment, i) => (typeof json.$id === 'string' ? json.$id : `Schema${i}`),
      },
    });
    await app.register(swaggerUi, { routePrefix: '/docs', staticCSP: true });
    app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());
  },
  { name: 'swagger' },
);
