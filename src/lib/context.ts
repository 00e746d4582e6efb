/**
 * Who is calling, and from where. Built once per request by the auth and request-context
 * plugins; services take it as their first argument and never read the HTTP request.
 */
export const ACTOR_ROLES = ['staff', 'admin', 'integration', 'patron'] as const;
export type ActorRole = (typeof ACTOR_ROLES)[number];
export type RecordKind = 'customer' | 'volunteer';

export interface RecordRef {
  kind: RecordKind;
  id: string;
}

/** External recipients are not JWT roles: they hold an access-link session for one thread. */
export type ActorKind = ActorRole | 'external' | 'anonymous';

/**
 * The audit chain for events that belong to no organization: bearer tokens that fail
 * verification, unknown access-link tokens. Operators read it (npm run audit:verify, SQL);
 * no organization's admin can.
 */
export const SERVICE_AUDIT_ORG = '_service';

export interface Actor {
  role: ActorKind;
  /** JWT `sub`. */
  id: string;
  orgId: string;
  /** Display name from the token; only staff-side names are ever written to the audit trail. */
  name: string | null;
  /** Patrons only: the record the token is for. */
  rec: RecordRef | null;
  /** External recipients only: the one thread their access link grants. */
  threadId?: string;
}

export interface RequestContext {
  actor: Actor;
  ip: string | null;
  userAgent: string | null;
  requestId: string;
}

/** Which side of the conversation an actor writes on; read receipts are set by the other side. */
export type Side = 'staff' | 'recipient';

export function sideOf(actor: Actor): Side {
  return actor.role === 'patron' || actor.role === 'external' ? 'recipient' : 'staff';
}

export function otherSide(side: Side): Side {
  return side === 'staff' ? 'recipient' : 'staff';
}

export function isStaffSide(actor: Actor): boolean {
  return actor.role === 'staff' || actor.role === 'admin';
}
