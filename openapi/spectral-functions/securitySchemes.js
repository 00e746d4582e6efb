/**
 * sc-security-schemes: components.securitySchemes declares every scheme in `options.required`
 * and at least one of `options.oneOrMore`, each with the listed fields (string values compared
 * case-insensitively: `scheme: Bearer` is `bearer`). Given the document root, so a document
 * without any securitySchemes fails too.
 */
const isObject = (value) => typeof value === 'object' && value !== null && !Array.isArray(value);

function mismatches(scheme, expected) {
  return Object.entries(expected)
    .filter(([field, value]) => String(scheme[field] ?? '').toLowerCase() !== String(value).toLowerCase())
    .map(([field, value]) => `${field} must be ${value}`);
}

export default function securitySchemes(root, options) {
  const declared = isObject(root) && isObject(root.components) && isObject(root.components.securitySchemes) ? root.components.securitySchemes : {};
  const path = ['components', 'securitySchemes'];
  const results = [];
  for (const [name, expected] of Object.entries(options.required ?? {})) {
    if (!isObject(declared[name])) {
      results.push({ message: `security scheme "${name}" must be declared`, path });
      continue;
    }
    for (const problem of mismatches(declared[name], expected)) results.push({ message: `security scheme "${name}": ${problem}`, path: [...path, name] });
  }
  const alternatives = Object.entries(options.oneOrMore ?? {});
  if (alternatives.length > 0) {
    const present = alternatives.filter(([name]) => isObject(declared[name]));
    if (present.length === 0) {
      results.push({ message: `one of the security schemes ${alternatives.map(([n]) => `"${n}"`).join(', ')} must be declared`, path });
    }
    for (const [name, expected] of present) {
      for (const problem of mismatches(declared[name], expected)) results.push({ message: `security scheme "${name}": ${problem}`, path: [...path, name] });
    }
  }
  return results;
}
