/**
 * The closed set of error codes, each mapped to its HTTP status in one place. Services throw
 * AppError with a code; the errors plugin renders RFC 9457 problem+json from it.
 *
 * Invariant: `detail` is written for the caller and never contains PHI, tokens, SQL or stack.
 */
export const ERROR_CODES = {
  validation_failed: { status: 400, title: 'The request is not valid' },
  invalid_cursor: { status: 400, title: 'The cursor is not valid' },
  unauthorized: { status: 401, title: 'Authentication is required' },
  external_access_denied: { status: 401, title: 'This link cannot be opened' },
  forbidden: { status: 403, title: 'This action is not allowed for your role' },
  reply_not_allowed: { status: 403, title: 'Replies are not allowed on this thread' },
  thread_closed: { status: 403, title: 'The thread is closed' },
  not_found: { status: 404, title: 'Not found' },
  method_not_allowed: { status: 405, title: 'Method not allowed' },
  document_deleted: { status: 410, title: 'The document was deleted after its retention period' },
  thread_deleted: { status: 410, title: 'The thread was deleted after its retention period' },
  retention_period_active: { status: 409, title: 'The retention period has not ended' },
  payload_too_large: { status: 413, title: 'The request body is too large' },
  storage_quota_exceeded: { status: 413, title: "The organization's storage allocation would be exceeded" },
  unsupported_media_type: { status: 415, title: 'The content type is not supported' },
  record_not_found: { status: 422, title: 'The record does not exist' },
  verification_data_missing: { status: 422, title: 'The record has no data for a requested check' },
  message_not_in_thread: { status: 422, title: 'The message is not in this thread' },
  attachment_not_found: { status: 422, title: 'An attachment does not exist' },
  attachment_private: { status: 422, title: 'A private library document cannot be attached' },
  attachment_wrong_record: { status: 422, title: "Only library documents and documents of the thread's own record can be attached" },
  attachment_not_allowed: { status: 422, title: 'Patrons may attach only documents they uploaded' },
  checkpoint_invalid: { status: 422, title: 'The checkpoint signature is not valid' },
  webhook_url_refused: { status: 422, title: 'The webhook URL is not allowed' },
  idempotency_key_reused: { status: 422, title: 'The Idempotency-Key was used for a different request' },
  rate_limited: { status: 429, title: 'Too many requests' },
  internal_error: { status: 500, title: 'Internal server error' },
  service_unavailable: { status: 503, title: 'The service is temporarily unavailable' },
} as const satisfies Record<string, { status: number; title: string }>;

export type ErrorCode = keyof typeof ERROR_CODES;

/** What a denied attempt should record in the audit trail (no PHI: ids and the action only). */
export interface DeniedAudit {
  action: string;
  documentId?: string;
  recordKind?: 'customer' | 'volunteer';
  recordId?: string;
  threadId?: string;
  messageId?: string;
  linkId?: string;
  /** When the object belongs to another organization: the event goes into the owner's chain. */
  ownerOrgId?: string;
  reason?: string;
}

export class AppError extends Error {
  readonly status: number;

  constructor(
    readonly code: ErrorCode,
    readonly detail?: string,
    /** When set, the errors plugin writes a `denied` audit event for this attempt. */
    readonly deniedAudit?: DeniedAudit,
  ) {
    super(detail ?? ERROR_CODES[code].title);
    this.name = 'AppError';
    this.status = ERROR_CODES[code].status;
  }
}

export function problemType(code: ErrorCode): string {
  return `urn:securecare:problem:${code}`;
}
