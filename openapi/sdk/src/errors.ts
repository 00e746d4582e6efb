/**
 * The one error the SDK's helpers throw for an answer that is not 2xx. It carries the service's
 * RFC 9457 problem+json body: `code` is stable and meant for program logic, `detail` for
 * people, `requestId` (the problem's `instance`, or the `x-request-id` header) for support.
 */
import type { components } from './schema.js';

export type Problem = components['schemas']['Problem'];

export class SecureCareApiError extends Error {
  override readonly name = 'SecureCareApiError';
  /** The HTTP status of the answer. */
  readonly status: number;
  /** The stable machine-readable code (`not_found`, `external_access_denied`, …). */
  readonly code: string;
  readonly detail: string | undefined;
  /** The whole problem+json body (with `errors` for validation failures). */
  readonly problem: Problem;
  readonly requestId: string | undefined;
  /** `METHOD path` of the request that failed, with the path template (no ids, no query). */
  readonly operation: string;

  constructor(problem: Problem, operation: string, requestId?: string) {
    super(`${operation}: ${problem.status} ${problem.code}${problem.detail ? `: ${problem.detail}` : ''}`);
    this.status = problem.status;
    this.code = problem.code;
    this.detail = problem.detail;
    this.problem = problem;
    this.requestId = requestId ?? problem.instance;
    this.operation = operation;
  }
}

/** True when `error` is a SecureCareApiError, optionally with this `code`. */
export function isApiError(error: unknown, code?: string): error is SecureCareApiError {
  return error instanceof SecureCareApiError && (code === undefined || error.code === code);
}

function isProblem(value: unknown): value is Problem {
  if (typeof value !== 'object' || value === null) return false;
  const v = value as { status?: unknown; code?: unknown; type?: unknown; title?: unknown };
  return typeof v.status === 'number' && typeof v.code === 'string';
}

/**
 * The problem for a failed answer: the body when it is one, otherwise a synthesized problem
 * (`http_<status>`) so callers always get the same shape (a proxy's HTML 502, say).
 */
export function problemOf(body: unknown, response: Response): Problem {
  if (isProblem(body)) {
    return { ...body, type: typeof body.type === 'string' ? body.type : 'about:blank', title: typeof body.title === 'string' ? body.title : '' };
  }
  const text = typeof body === 'string' ? body.trim() : '';
  return {
    type: 'about:blank',
    title: response.statusText || `HTTP ${response.status}`,
    status: response.status,
    code: `http_${response.status}`,
    ...(text ? { detail: text.slice(0, 300) } : {}),
  };
}
