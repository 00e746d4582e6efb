/**
 * Keyset pagination: cursors are opaque base64url JSON of the last row's sort key. Clients
 * must treat them as opaque; a tampered or foreign cursor answers 400 invalid_cursor.
 */
import { AppError } from './errors.js';
import { UUID_PATTERN } from './ids.js';

export const DEFAULT_PAGE_SIZE = 50;
export const MAX_PAGE_SIZE = 200;

export interface Page<T> {
  items: T[];
  nextCursor: string | null;
}

export function encodeCursor(key: readonly (string | number)[]): string {
  return Buffer.from(JSON.stringify(key), 'utf8').toString('base64url');
}

/**
 * What each cursor position must hold. Values are checked before they reach SQL, so a forged
 * cursor is a 400, never a failed cast.
 */
const CURSOR_PARTS = {
  uuid: (v: unknown): v is string => typeof v === 'string' && new RegExp(UUID_PATTERN).test(v),
  // Round-trip, so a rolled-over date (Feb 30) or a leap second never reaches a SQL cast.
  timestamp: (v: unknown): v is string => typeof v === 'string' && isCanonicalTimestamp(v),
  seq: (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0,
} as const;

type CursorPart = keyof typeof CURSOR_PARTS;

/** An ISO timestamp exactly as Date#toISOString writes it, between 1970 and 9999. */
export function isCanonicalTimestamp(v: string): boolean {
  if (!/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/.test(v)) return false;
  const d = new Date(v);
  return !Number.isNaN(d.getTime()) && d.toISOString() === v && d.getUTCFullYear() >= 1970;
}

/** A client-supplied date-time as a Date, or 400 when it is not a real instant. */
export function parseInstant(value: string | undefined, field: string): Date | undefined {
  if (value === undefined) return undefined;
  const d = new Date(value);
  if (Number.isNaN(d.getTime()) || d.getUTCFullYear() < 1970 || d.getUTCFullYear() > 9999 || /:60(\.|Z|[+-])/.test(value)) {
    throw new AppError('validation_failed', `${field} must be a real date-time between 1970 and 9999`);
  }
  return d;
}
type CursorValue<P extends CursorPart> = P extends 'seq' ? number : string;

/** Decodes a cursor into exactly the key shape expected, or throws 400 invalid_cursor. */
export function decodeCursor<const T extends readonly CursorPart[]>(
  cursor: string | undefined,
  shape: T,
): { [K in keyof T]: CursorValue<T[K]> } | undefined {
  if (cursor === undefined) return undefined;
  const invalid = () => new AppError('invalid_cursor', 'Use the nextCursor of a previous page, unchanged');
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
  } catch {
    throw invalid();
  }
  if (!Array.isArray(parsed) || parsed.length !== shape.length) throw invalid();
  shape.forEach((part, i) => {
    if (!CURSOR_PARTS[part](parsed[i])) throw invalid();
  });
  return parsed as { [K in keyof T]: CursorValue<T[K]> };
}

/** Rows are fetched with limit + 1; the extra row only says whether a next page exists. */
export function toPage<R, T>(rows: R[], limit: number, map: (row: R) => T, key: (row: R) => (string | number)[]): Page<T> {
  const hasMore = rows.length > limit;
  const pageRows = hasMore ? rows.slice(0, limit) : rows;
  const last = pageRows[pageRows.length - 1];
  return {
    items: pageRows.map(map),
    nextCursor: hasMore && last !== undefined ? encodeCursor(key(last)) : null,
  };
}
