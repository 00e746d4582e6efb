/**
 * sc-operation-example: an operation shows at least one example, where OpenAPI puts examples
 * for tools (Swagger UI, Postman, mock servers):
 *   - `example`, or a non-empty `examples` map, on a media type of the request body;
 *   - the same on a media type of a 2xx response (`200`…`299`, `2XX`);
 *   - `example`/`examples` on a parameter (the operation's or its path item's), or on a media
 *     type of a parameter's `content`.
 * Examples inside schemas (`examples` keywords, component examples) and on error responses do
 * not count: they say nothing about this operation.
 * Exempt: an operation with nothing to show, i.e. no parameter, no request body and no 2xx
 * response content (e.g. DELETE …/session → 204 with a cookie-based security scheme).
 * Runs on the resolved document, so `$ref`'d parameters and bodies count.
 */
const isObject = (value) => typeof value === 'object' && value !== null && !Array.isArray(value);

const hasExample = (node) =>
  isObject(node) && (node.example !== undefined || (isObject(node.examples) && Object.keys(node.examples).length > 0));

const mediaTypes = (content) => (isObject(content) ? Object.values(content).filter(isObject) : []);

const SUCCESS = /^2(\d\d|XX)$/i;

export default function operationExample(operation, _options, context) {
  if (!isObject(operation)) return;
  const root = context.documentInventory.resolved;
  const pathItem = isObject(root) && isObject(root.paths) ? root.paths[context.path[1]] : undefined;
  const parameters = [
    ...(isObject(pathItem) && Array.isArray(pathItem.parameters) ? pathItem.parameters : []),
    ...(Array.isArray(operation.parameters) ? operation.parameters : []),
  ].filter(isObject);
  const bodyMedia = isObject(operation.requestBody) ? mediaTypes(operation.requestBody.content) : [];
  const successMedia = Object.entries(isObject(operation.responses) ? operation.responses : {})
    .filter(([status, response]) => SUCCESS.test(status) && isObject(response))
    .flatMap(([, response]) => mediaTypes(response.content));

  if (parameters.length === 0 && bodyMedia.length === 0 && successMedia.length === 0) return;
  if (bodyMedia.some(hasExample) || successMedia.some(hasExample)) return;
  if (parameters.some((p) => hasExample(p) || mediaTypes(p.content).some(hasExample))) return;
  return [
    {
      message:
        'Operation has no example: give one on the request body or a 2xx response media type (ref(X, { examples })), or on a parameter',
    },
  ];
}
