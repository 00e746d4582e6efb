/**
 * The pino logger. Redaction is a second line of defence: the code never logs bodies, and
 * these paths censor credentials and PHI-named fields wherever they might appear.
 */
import pino, { type DestinationStream, type Logger } from 'pino';
import { sqlState } from '../db/util.js';

export const REDACT_PATHS = [
  'req.headers.authorization',
  'req.headers.cookie',
  'req.headers["idempotency-key"]',
  'res.headers["set-cookie"]',
  'headers.authorization',
  'headers.cookie',
  '*.authorization',
  '*.token',
  '*.sessionToken',
  '*.password',
  '*.subject',
  '*.body',
  '*.displayName',
  '*.email',
  '*.dateOfBirth',
  '*.phone',
  'body',
];

/** Query values can be PHI (a document name search); only their keys are logged. */
export function urlForLog(url: string): string {
  const q = url.indexOf('?');
  if (q < 0) return url;
  const keys = [...new URLSearchParams(url.slice(q + 1)).keys()];
  return `${url.slice(0, q)}?${keys.map((k) => `${encodeURIComponent(k)}=…`).join('&')}`;
}

/**
 * What the log may say of an error: its class, its code and where it was thrown. Driver and
 * Drizzle errors quote the query's parameters in their message (`Failed query: … params: …`,
 * `invalid input syntax for type uuid: "<value>"`), and those parameters are sealed PHI or
 * PHI itself, so a message is kept only for errors that did not come from the database, and
 * the stack keeps only its frames (the first lines of a stack repeat the message).
 */
export function errorForLog(error: unknown): Record<string, unknown> {
  if (error === null || typeof error !== 'object') return { type: typeof error };
  const chain: object[] = [];
  for (let e: unknown = error; e !== null && typeof e === 'object' && chain.length < 4; e = (e as { cause?: unknown }).cause) chain.push(e);
  const fromDatabase =
    sqlState(error) !== undefined ||
    chain.some((e) => {
      const { query, params, message } = e as { query?: unknown; params?: unknown; message?: unknown };
      return query !== undefined || params !== undefined || (typeof message === 'string' && message.startsWith('Failed query'));
    });
  const e = error as { name?: unknown; code?: unknown; message?: unknown; stack?: unknown };
  const code = chain.map((c) => (c as { code?: unknown }).code).find((c): c is string => typeof c === 'string' && c.length <= 40);
  const frames = typeof e.stack === 'string' ? e.stack.split('\n').filter((line) => /^\s+at /.test(line)).slice(0, 8).join('\n') : undefined;
  return {
    type: typeof e.name === 'string' ? e.name : 'Error',
    ...(code ? { code } : {}),
    ...(!fromDatabase && typeof e.message === 'string' ? { message: e.message.slice(0, 500) } : {}),
    ...(frames ? { stack: frames } : {}),
  };
}

interface LoggedRequest {
  method: string;
  url: string;
  headers?: Record<string, unknown>;
  ip?: string;
}

export function createLogger(level: string, destination?: DestinationStream): Logger {
  return pino(
    {
      level,
      redact: { paths: REDACT_PATHS, censor: '[redacted]' },
      serializers: {
        err: errorForLog,
        error: errorForLog,
        req: (req: LoggedRequest) => ({
          method: req.method,
          url: urlForLog(req.url),
          remoteAddress: req.ip,
          userAgent: typeof req.headers?.['user-agent'] === 'string' ? req.headers['user-agent'].slice(0, 256) : undefined,
        }),
      },
      base: { service: 'securecare-messaging' },
      timestamp: pino.stdTimeFunctions.isoTime,
    },
    destination,
  );
}
