/**
 * One error handler for the whole API: every failure leaves as RFC 9457 problem+json with a
 * stable `code` from src/lib/errors.ts.
 *
 * Invariants:
 * - a 5xx body says nothing internal (no message, stack, SQL or driver text);
 * - validation messages name the field and the rule, never the submitted value;
 * - denied attempts and integrity failures are written to the audit trail here, once.
 */
import fp from 'fastify-plugin';
import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import { AppError, ERROR_CODES, problemType, type ErrorCode } from '../lib/errors.js';
import { IntegrityError } from '../lib/crypto/key-ring.js';
import { requestContext } from './auth.js';
import { problems } from '../lib/schemas.js';
import { isDatabaseUnavailable } from '../db/util.js';
import type { AuditInput } from '../modules/audit/audit.service.js';

export interface ErrorsPluginOptions {
  /** Writes a standalone event; `ownerOrgId` puts it into another organization's chain. */
  recordAudit(request: FastifyRequest, input: AuditInput, ownerOrgId?: string): Promise<void>;
}

interface ProblemBody {
  type: string;
  title: string;
  status: number;
  code: ErrorCode;
  detail?: string;
  instance?: string;
  errors?: { path: string; message: string }[];
}

const EXTERNAL_DENIED_DETAIL = 'The link is not valid, or the details given do not match. Ask the sender for a new link.';
const INTERNAL_DETAIL = 'An unexpected error occurred. Quote the instance id when you contact support.';

export function problemBody(code: ErrorCode, requestId: string, detail?: string): ProblemBody {
  const { status, title } = ERROR_CODES[code];
  if (code === 'internal_error') detail = INTERNAL_DETAIL;
  // Link failures must be byte-identical whatever the cause, so they carry no per-request
  // instance (the x-request-id header still identifies the request).
  if (code === 'external_access_denied') return { type: problemType(code), title, status, code, detail: EXTERNAL_DENIED_DETAIL };
  return { type: problemType(code), title, status, code, ...(detail ? { detail } : {}), instance: requestId };
}

function sendProblem(reply: FastifyReply, body: ProblemBody): FastifyReply {
  return reply.status(body.status).type('application/problem+json').send(body);
}

/** Maps Fastify's own errors (validation, body parsing, limits) onto our closed set. */
function fastifyErrorCode(error: FastifyError): ErrorCode {
  switch (error.statusCode) {
    case 404:
      return 'not_found';
    case 405:
      return 'method_not_allowed';
    case 413:
      return 'payload_too_large';
    case 415:
      return 'unsupported_media_type';
    case 429:
      return 'rate_limited';
    case 503:
      return 'service_unavailable';
    default:
      return error.statusCode !== undefined && error.statusCode >= 400 && error.statusCode < 500
        ? 'validation_failed'
        : 'internal_error';
  }
}

function fastifyErrorDetail(error: FastifyError): string | undefined {
  switch (error.code) {
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return 'The body is not valid JSON';
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return 'Send application/json';
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return 'The body is larger than this route accepts';
    default:
      return undefined;
  }
}

export default fp(
  async function errorsPlugin(app, opts: ErrorsPluginOptions) {
    // Fastify's JSON parser runs before any handler of a route with a JSON body, and answers
    // 413 (over bodyLimit) and 415 (not application/json) through this handler: every such
    // route declares both, so the contract lists what the parser can answer. Upload routes
    // (config.multipartForm) declare their own 413/415. Registered before any route.
    app.addHook('onRoute', (route) => {
      if (!route.schema?.body || route.config?.multipartForm) return;
      route.schema.response = { ...problems(413, 415), ...(route.schema.response as Record<string, unknown> | undefined) };
    });
    app.setErrorHandler(async (error: FastifyError | AppError | Error, request, reply) => {
      if (error instanceof AppError) {
        if (error.deniedAudit && request.actor) {
          const { ownerOrgId, ...denied } = error.deniedAudit;
          await opts
            .recordAudit(request, { reason: error.code, ...denied, outcome: 'denied' }, ownerOrgId)
            .catch((e: unknown) => request.log.error({ err: e }, 'could not audit a denied attempt'));
        }
        return sendProblem(reply, problemBody(error.code, request.id, error.detail));
      }
      if (error instanceof IntegrityError) {
        request.log.error({ what: error.what, target: error.target }, 'ciphertext failed authentication');
        if (request.actor) {
          await opts
            .recordAudit(request, { action: 'integrity.failed', outcome: 'error', reason: error.what, ...error.target })
            .catch((e: unknown) => request.log.error({ err: e }, 'could not audit an integrity failure'));
        }
        return sendProblem(reply, problemBody('internal_error', request.id));
      }
      const fe = error as FastifyError;
      if (fe.validation) {
        const errors = fe.validation.map((v) => ({
          path: `${fe.validationContext ?? 'body'}${v.instancePath || ''}${
            v.keyword === 'additionalProperties' ? `/${String((v.params as { additionalProperty?: string }).additionalProperty)}` : ''
          }`,
          message: v.message ?? 'is not valid',
        }));
        const detail = errors.map((e) => `${e.path} ${e.message}`).join('; ');
        return sendProblem(reply, { ...problemBody('validation_failed', request.id, detail), errors });
      }
      const code = fastifyErrorCode(fe);
      if (code === 'internal_error' && isDatabaseUnavailable(error)) {
        // A restart, failover or dropped connection: the client may retry; nothing was half-done
        // (every change is one transaction, and a 2xx is sent only after its commit). The codes
        // are network ones too, so an unreachable object store lands here as well: the log
        // names the error, for the operator to tell which.
        request.log.warn({ err: error }, 'backing service unavailable (database or object store)');
        return sendProblem(reply, problemBody('service_unavailable', request.id, 'A service this request needs is unavailable; try again shortly'));
      }
      if (code === 'internal_error') {
        // The logger's err serializer (errorForLog) keeps no message of a database error: driver
        // errors quote query parameters, which are PHI.
        request.log.error({ err: error }, 'unhandled error');
        return sendProblem(reply, problemBody(code, request.id));
      }
      return sendProblem(reply, problemBody(code, request.id, fastifyErrorDetail(fe)));
    });

    app.setNotFoundHandler((request, reply) => sendProblem(reply, problemBody('not_found', request.id, 'No such route')));
  },
  { name: 'errors' },
);

export { requestContext };
