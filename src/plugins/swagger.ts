/**
 * The OpenAPI 3.1 contract, built from the route schemas. Named schemas (those with `$id`)
 * become components under their own names; `npm run openapi` writes the result to
 * openapi/openapi.json, and it is served at /openapi.json with Swagger UI at /docs.
 * `npm run lint:openapi` holds it to openapi/spectral.yaml.
 *
 * Two things the route schemas say that @fastify/swagger cannot carry on its own:
 * - examples next to a `$ref` (`ref(X, { examples })` as a body or response): it keeps only
 *   the `$ref`, so the transform below lifts them into `x-sc-examples` on the operation and
 *   transformObject puts each on its media type (`example`, or `examples` when several);
 * - multipart uploads (`config.multipartForm` on the route): the handler reads the stream
 *   itself, so the route has no body schema for Fastify to validate; the transform gives the
 *   contract a `multipart/form-data` request body that `$ref`s the named form schema.
 */
import fp from 'fastify-plugin';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import type { FastifySchema, RouteOptions } from 'fastify';
import type { TSchema } from 'typebox';

export const OPENAPI_INFO = {
  title: 'SecureCare Messaging API',
  version: '1.0.0',
  description:
    'HIPAA-aware secure messaging: staff-initiated threads on customer and volunteer records, ' +
    'encrypted at rest and audited. Errors are RFC 9457 problem+json with a stable `code`.',
  contact: { name: 'SecureCare Messaging API team', email: 'api@securecare.example', url: 'https://securecare.example/developers' },
  license: { name: 'Proprietary', url: 'https://securecare.example/terms' },
};

/** Where the transform leaves lifted examples for transformObject (never in the written contract). */
const LIFTED = 'x-sc-examples';

interface Lifted {
  body?: unknown[];
  responses?: Record<string, unknown[]>;
}

type Json = Record<string, unknown>;
const isObject = (value: unknown): value is Json => typeof value === 'object' && value !== null && !Array.isArray(value);

/** `{ $ref, examples }` → the bare `{ $ref }` and the examples; anything else unchanged. */
function splitRefExamples(schema: unknown): { schema: unknown; examples?: unknown[] } {
  if (!isObject(schema) || typeof schema.$ref !== 'string' || !Array.isArray(schema.examples) || schema.examples.length === 0) return { schema };
  const { examples, ...rest } = schema;
  return { schema: rest, examples: examples as unknown[] };
}

/** Per route, for the contract only: the route's own schema (what Fastify validates) is never modified. */
function transformRoute({ schema, url, route }: { schema: FastifySchema; url: string; route: RouteOptions }) {
  if (!schema) return { schema, url };
  const out: Json = { ...(schema as Json) };
  const lifted: Lifted = {};
  const form = route.config?.multipartForm as { $id?: unknown } | undefined;
  if (form) {
    if (typeof form.$id !== 'string') throw new Error(`${url}: config.multipartForm needs a named schema (with $id)`);
    out.body = { $ref: `${form.$id}#` };
    out.consumes = ['multipart/form-data'];
  } else if (out.body !== undefined) {
    const body = splitRefExamples(out.body);
    out.body = body.schema;
    if (body.examples) lifted.body = body.examples;
  }
  if (isObject(out.response)) {
    const responses: Json = {};
    for (const [status, response] of Object.entries(out.response)) {
      const split = splitRefExamples(response);
      responses[status] = split.schema;
      if (split.examples) (lifted.responses ??= {})[status] = split.examples;
    }
    out.response = responses;
  }
  if (lifted.body || lifted.responses) out[LIFTED] = lifted;
  return { schema: out as FastifySchema, url };
}

/** One example as `example`; several as `examples` named example1, example2… (as @fastify/swagger names them). */
function setExamples(media: unknown, examples: unknown[]) {
  if (!isObject(media)) return;
  if (examples.length === 1) media.example = examples[0];
  else media.examples = Object.fromEntries(examples.map((value, i) => [`example${i + 1}`, { value }]));
}

/** Puts the lifted examples on their media types and removes the marker (in place). */
function placeLiftedExamples(document: object): void {
  const paths = (document as { paths?: unknown }).paths;
  if (!isObject(paths)) return;
  for (const pathItem of Object.values(paths)) {
    if (!isObject(pathItem)) continue;
    for (const operation of Object.values(pathItem)) {
      if (!isObject(operation) || !isObject(operation[LIFTED])) continue;
      const lifted = operation[LIFTED] as Lifted;
      delete operation[LIFTED];
      const requestBody = operation.requestBody;
      if (lifted.body && isObject(requestBody) && isObject(requestBody.content)) {
        for (const media of Object.values(requestBody.content)) setExamples(media, lifted.body);
      }
      const responses = operation.responses;
      for (const [status, examples] of Object.entries(lifted.responses ?? {})) {
        const response = isObject(responses) ? responses[status] : undefined;
        if (isObject(response) && isObject(response.content)) {
          for (const media of Object.values(response.content)) setExamples(media, examples);
        }
      }
    }
  }
}

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
        // Alphabetical (Spectral's openapi-tags-alphabetical).
        tags: [
          { name: 'audit', description: 'The append-only, hash-chained audit trail' },
          { name: 'documents', description: 'Document Storage: uploads, the library, record repositories, downloads' },
          { name: 'external access', description: 'Access links for people without an account, and their sessions' },
          { name: 'messages', description: 'Messages and read receipts' },
          { name: 'operations', description: 'Health and readiness' },
          { name: 'records', description: 'Customer and volunteer records, synced by integrations' },
          { name: 'settings', description: 'Per-organization storage allocation and retention' },
          { name: 'threads', description: 'Staff-initiated conversations on a record' },
          { name: 'webhooks', description: 'Signed event notifications to integration endpoints, and their delivery log' },
        ],
      },
      transform: transformRoute,
      transformObject: (documentObject) => {
        if (!('openapiObject' in documentObject)) return documentObject.swaggerObject;
        placeLiftedExamples(documentObject.openapiObject);
        return documentObject.openapiObject;
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
