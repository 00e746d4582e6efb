/**
 * sc-security-requirements-declared: each Security Requirement Object (the global `security`
 * and every operation's) names only schemes declared in components.securitySchemes.
 */
const isObject = (value) => typeof value === 'object' && value !== null && !Array.isArray(value);

export default function declaredSecurity(requirement, _options, context) {
  if (!isObject(requirement)) return;
  const root = context.document.data;
  const declared = isObject(root) && isObject(root.components) && isObject(root.components.securitySchemes) ? root.components.securitySchemes : {};
  return Object.keys(requirement)
    .filter((name) => !Object.hasOwn(declared, name))
    .map((name) => ({ message: `security scheme "${name}" is not declared in components.securitySchemes`, path: [...context.path, name] }));
}
