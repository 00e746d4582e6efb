/**
 * Schema helpers shared by every module. Named schemas (with `$id`) become OpenAPI
 * components with real names; routes point at them through `ref()`, which keeps TypeBox's
 * static type for the handler. `ref(X, { examples })` also carries the operation's examples
 * to the contract: the swagger plugin moves them onto the body's or response's media type
 * (@fastify/swagger itself drops every keyword next to a `$ref`).
 */
import { Type, type Static, type TSchema } from 'typebox';
import { DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE } from './pagination.js';
import { UUID_PATTERN } from './ids.js';

/**
 * A `$ref` to a named schema (one with `$id`), typed as that schema for the handler. Examples
 * (type-checked against the schema) are annotations: validation and serialization ignore them;
 * as a route's body or response they become the media type's `example` in the contract.
 */
export function ref<T extends TSchema>(schema: T, options: { examples?: readonly Static<T>[] } = {}) {
  const id = (schema as { $id?: unknown }).$id;
  if (typeof id !== 'string') throw new Error('ref() needs a schema with an $id');
  return Type.Unsafe<Static<T>>(options.examples?.length ? { $ref: `${id}#`, examples: [...options.examples] } : { $ref: `${id}#` });
}

export function StringEnum<const T extends readonly string[]>(values: T, options: Record<string, unknown> = {}) {
  return Type.Unsafe<T[number]>({ type: 'string', enum: [...values], ...options });
}

/** Free text from a query string: no control characters (PostgreSQL refuses NUL in text). */
export const NO_CONTROL = '^[^\\u0000-\\u001f\\u007f]*$';

export const Uuid = (options: Record<string, unknown> = {}) => Type.String({ pattern: UUID_PATTERN, ...options });

export const Problem = Type.Object(
  {
    type: Type.String({ description: 'A URN naming the problem type' }),
    title: Type.String(),
    status: Type.Integer(),
    detail: Type.Optional(Type.String()),
    code: Type.String({ description: 'Stable machine-readable error code' }),
    instance: Type.Optional(Type.String({ description: 'The request id, for support' })),
    errors: Type.Optional(
      Type.Array(
        Type.Object({ path: Type.String(), message: Type.String() }, { additionalProperties: false }),
        { description: 'Validation failures, one per field' },
      ),
    ),
  },
  { $id: 'Problem', description: 'RFC 9457 problem details', additionalProperties: false },
);

const PROBLEM_DESCRIPTIONS: Record<number, string> = {
  400: 'The request is not valid (validation_failed, invalid_cursor)',
  401: 'No valid bearer token',
  403: 'The caller may not do this',
  404: 'Not found, or not visible to the caller',
  409: 'Conflicts with the current state',
  413: 'Too large',
  415: 'Unsupported content type',
  422: 'Well-formed but refused by a rule',
  429: 'Rate limited',
  503: 'Temporarily unavailable',
};

/** Response entries for the given error statuses, all application/problem+json Problems. */
export function problems(...statuses: number[]) {
  const out: Record<number, { description: string; content: { 'application/problem+json': { schema: ReturnType<typeof ref<typeof Problem>> } } }> = {};
  for (const status of statuses) {
    out[status] = {
      description: PROBLEM_DESCRIPTIONS[status] ?? 'Problem',
      content: { 'application/problem+json': { schema: ref(Problem) } },
    };
  }
  return out;
}

export const PageQuery = {
  cursor: Type.Optional(Type.String({ maxLength: 512, description: 'Opaque cursor from the previous page' })),
  limit: Type.Optional(
    Type.Integer({ minimum: 1, maximum: MAX_PAGE_SIZE, default: DEFAULT_PAGE_SIZE, description: `Page size, at most ${MAX_PAGE_SIZE}` }),
  ),
};

export const NextCursor = Type.Union([Type.String(), Type.Null()], {
  description: 'Pass as `cursor` to get the next page; null on the last page',
});

export const RecordKind = StringEnum(['customer', 'volunteer'] as const);
/** The platform's own record ids: short opaque strings, safe in a URL path. */
export const recordExternalId = (options: Record<string, unknown> = {}) =>
  Type.String({ minLength: 1, maxLength: 128, pattern: '^[A-Za-z0-9._:-]+$', ...options });
export const RecordExternalId = recordExternalId();

export const IdempotencyHeaders = Type.Object({
  'idempotency-key': Type.Optional(
    Type.String({ minLength: 1, maxLength: 255, pattern: '^[\\x21-\\x7e]+$', description: 'Retry-safe key', examples: ['7f1c0a52-first-outreach'] }),
  ),
});
