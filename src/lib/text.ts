/** Strips control characters and caps length, so header values cannot inject into logs/audit. */
export function sanitizeHeaderText(value: string | undefined, maxLength: number): string | null {
  if (value === undefined) return null;
  // eslint-disable-next-line no-control-regex
  const clean = value.replace(/[\u0000-\u001f\u007f-\u009f]/g, '').slice(0, maxLength);
  return clean.length > 0 ? clean : null;
}
