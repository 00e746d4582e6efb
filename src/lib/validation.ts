/**
 * Request validation. Bodies are validated strictly (no type coercion, unknown fields are an
 * error, not silently dropped); params and query strings coerce from text as they must.
 */
import { Ajv, type AnySchema } from 'ajv';
import addFormatsModule from 'ajv-formats';
import type { FastifySchemaCompiler } from 'fastify';

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

export function createValidatorCompiler(schemas: AnySchema[]): FastifySchemaCompiler<AnySchema> {
  const bodyAjv = makeAjv(false, schemas);
  const textAjv = makeAjv('array', schemas);
  return ({ schema, httpPart }) => (httpPart === 'body' ? bodyAjv : textAjv).compile(schema);
}
