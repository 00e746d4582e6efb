/**
 * The pino logger. Redaction is a second line of defence: the code never logs bodies, and
 * these paths censor credentials and PHI-named fields wherever they might appear.
 */
import pino, { type DestinationStream, type Logger } from 'pino';

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
