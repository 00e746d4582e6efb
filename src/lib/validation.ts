/**
 * Request validation. Bodies are validated strictly (no type coercion, unknown fields are an
 * error, not silently dropped); params and query strings coerce from text as they must.
 * Path ids (UUIDs) are accepted in either case and canonicalized to lowercase once valid, as
 * PostgreSQL stores them: services and the audit trail then see the id as it is stored (an
 * event hashed over an uppercase id no longer matched its stored, lowercased row).
 */
import { Ajv, type AnySchema, type ValidateFunction } from 'ajv';
import addFormatsModule from 'ajv-formats';
import type { FastifySchemaCompiler } from 'fastify';
import { UUID_PATTERN } from './ids.js';

// ajv-formats is CommonJS; its default export arrives wrapped under ESM.
const addFormats = ((addFormatsModule as unknown as { default?: typeof addFormatsModule }).default ?? addFormatsModule) as unknown as (
  ajv: Ajv,
) => Ajv;

function makeAjv(coerceTypes: boolean | 'array', schemas: AnySchema[]): Ajv {
  const ajv = new Ajv({ allErrors: false, coerceTypes, removeAdditional: false, useDefaults: true, strict: false });
  addFormats(ajv);
  for (const s of schemas) ajv.addSchema(s);
  return ajv;
}

/** The path parameters whose schema is a UUID. */
function uuidParams(schema: AnySchema): string[] {
  const properties = (schema as { properties?: Record<string, { pattern?: unknown }> }).properties ?? {};
  return Object.entries(properties)
    .filter(([, p]) => p.pattern === UUID_PATTERN)
    .map(([name]) => name);
}

/** Validates, then lowercases the UUID params of valid data (errors pass through unchanged). */
function canonicalizingUuids(validate: ValidateFunction, names: string[]) {
  const wrapped = (data: unknown) => {
    const ok = validate(data);
    if (ok && data && typeof data === 'object') {
      const params = data as Record<string, unknown>;
      for (const name of names) if (typeof params[name] === 'string') params[name] = params[name].toLowerCase();
    }
    return ok;
  };
  return Object.defineProperty(wrapped, 'errors', { get: () => validate.errors });
}

export function createValidatorCompiler(schemas: AnySchema[]): FastifySchemaCompiler<AnySchema> {
  const bodyAjv = makeAjv(false, schemas);
  const textAjv = makeAjv('array', schemas);
  return ({ schema, httpPart }) => {
    const validate = (httpPart === 'body' ? bodyAjv : textAjv).compile(schema);
    const names = httpPart === 'params' ? uuidParams(schema) : [];
    return names.length > 0 ? canonicalizingUuids(validate, names) : validate;
  };
}
