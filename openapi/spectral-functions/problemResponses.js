/**
 * sc-problem-responses: every 4xx and 5xx response (`400`…`599`, `4XX`, `5XX`) of an operation
 * has exactly one media type, `application/problem+json`, whose schema is exactly
 * `{ $ref: <options.schemaRef> }` (the shared Problem component). A response that is itself a
 * local `$ref` (#/components/responses/…) is followed. Runs on the unresolved document so the
 * `$ref` to the Problem schema can be seen.
 */
const isObject = (value) => typeof value === 'object' && value !== null && !Array.isArray(value);
const ERROR = /^[45](\d\d|XX)$/i;
const MEDIA = 'application/problem+json';

function follow(document, node) {
  let current = node;
  for (let hops = 0; hops < 10 && isObject(current) && typeof current.$ref === 'string' && current.$ref.startsWith('#/'); hops++) {
    current = current.$ref
      .slice(2)
      .split('/')
      .map((part) => part.replace(/~1/g, '/').replace(/~0/g, '~'))
      .reduce((at, key) => (isObject(at) ? at[key] : undefined), document);
  }
  return current;
}

export default function problemResponses(responses, options, context) {
  if (!isObject(responses)) return;
  const results = [];
  for (const [status, raw] of Object.entries(responses)) {
    if (!ERROR.test(status)) continue;
    const path = [...context.path, status];
    const response = follow(context.document.data, raw);
    const content = isObject(response) ? response.content : undefined;
    const types = isObject(content) ? Object.keys(content) : [];
    if (types.length !== 1 || types[0] !== MEDIA) {
      results.push({ message: `${status} must have exactly one media type, ${MEDIA} (has: ${types.join(', ') || 'none'})`, path });
      continue;
    }
    const schema = isObject(content[MEDIA]) ? content[MEDIA].schema : undefined;
    if (!isObject(schema) || schema.$ref !== options.schemaRef || Object.keys(schema).length !== 1) {
      results.push({ message: `${status} ${MEDIA} schema must be exactly { $ref: ${options.schemaRef} }`, path: [...path, 'content', MEDIA, 'schema'] });
    }
  }
  return results;
}
