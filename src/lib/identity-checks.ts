/**
 * The identity checks of an access link (DESIGN section 6): a date of birth and a phone
 * number, normalized, then compared in constant time.
 */
import { createHash, timingSafeEqual } from 'node:crypto';

/** YYYY-MM-DD from YYYY-MM-DD, YYYY/MM/DD or MM/DD/YYYY; null when it is not a real date. */
export function normalizeDate(input: string | null | undefined): string | null {
  if (!input) return null;
  const s = input.trim();
  let y: string, m: string, d: string;
  let match = /^(\d{4})[-/.](\d{1,2})[-/.](\d{1,2})$/.exec(s);
  if (match) [, y, m, d] = match as unknown as [string, string, string, string];
  else {
    match = /^(\d{1,2})[-/.](\d{1,2})[-/.](\d{4})$/.exec(s);
    if (!match) return null;
    [, m, d, y] = match as unknown as [string, string, string, string];
  }
  const iso = `${y}-${m.padStart(2, '0')}-${d.padStart(2, '0')}`;
  const date = new Date(`${iso}T00:00:00Z`);
  return !Number.isNaN(date.getTime()) && date.toISOString().startsWith(iso) ? iso : null;
}

/** The digits of a phone number, with an optional leading country code 1 dropped (NANP). */
export function normalizePhone(input: string | null | undefined): string | null {
  if (!input) return null;
  const digits = input.replace(/\D/g, '');
  const national = digits.length === 11 && digits.startsWith('1') ? digits.slice(1) : digits;
  return national.length >= 3 ? national : null;
}

/** Constant-time equality of two normalized values (hashed first, so lengths never leak). */
export function sameValue(a: string | null, b: string | null): boolean {
  const ha = createHash('sha256').update(a ?? '\u0000none').digest();
  const hb = createHash('sha256').update(b ?? '\u0000missing').digest();
  return timingSafeEqual(ha, hb) && a !== null && b !== null;
}
