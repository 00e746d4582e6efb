/**
 * sc-no-inline-object-schema: the schema directly under a request-body or response media type
 * must not be an anonymous object. It is one when it is not a `$ref` and
 *   - has `type: object` (or a type list with "object"), or `properties`,
 *     `additionalProperties` or `patternProperties`; or
 *   - is an array whose `items` is such a schema; or
 *   - has an `allOf`/`anyOf`/`oneOf` member that is such a schema.
 * Fine: `$ref`s to components, scalars (`type: string, format: binary`), arrays of `$ref`s.
 * Objects nested inside a named component are not looked at. Runs on the unresolved document.
 */
const isObject = (value) => typeof value === 'object' && value !== null && !Array.isArray(value);

function isInlineObject(schema) {
  if (!isObject(schema) || typeof schema.$ref === 'string') return false;
  const types = Array.isArray(schema.type) ? schema.type : [schema.type];
  if (types.includes('object') || 'properties' in schema || 'additionalProperties' in schema || 'patternProperties' in schema) return true;
  if (isInlineObject(schema.items)) return true;
  return ['allOf', 'anyOf', 'oneOf'].some((key) => Array.isArray(schema[key]) && schema[key].some(isInlineObject));
}

export default function noInlineObjectSchema(schema) {
  if (!isInlineObject(schema)) return;
  return [{ message: 'Inline object schema under a media type: make it a named schema (#/components/schemas, a TypeBox $id schema) and $ref it' }];
}
