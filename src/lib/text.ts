/** Strips control characters and caps length, so header values cannot inject into logs/audit. */
export function sanitizeHeaderText(value: string | undefined, maxLength: number): string | null {
  if (value === undefined) return null;
  // eslint-disable-next-line no-control-regex
  const clean = value.replace(/[\u0000-\u001f\u007f-\u009f]/g, '').slice(0, maxLength);
  return clean.length > 0 ? clean : null;
}

// eslint-disable-next-line no-control-regex
const UNSTORABLE = /[\u0000-\u001f\u007f]|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/**
 * Whether a string can be stored in a text column and read back unchanged: no control
 * characters (PostgreSQL refuses NUL) and no unpaired surrogates (UTF-8 cannot encode them;
 * they would come back as U+FFFD, so anything hashed before storing no longer matches).
 */
export function isStorableText(value: string): boolean {
  return !UNSTORABLE.test(value);
}
