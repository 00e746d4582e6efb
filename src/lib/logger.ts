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

export function createLogger(level: string, destination?: DestinationStream): Logger {
  return pino(
    {
      level,
      redact: { paths: REDACT_PATHS, censor: '[redacted]' },
      base: { service: 'securecare-messaging' },
      timestamp: pino.stdTimeFunctions.isoTime,
    },
    destination,
  );
}
