/**
 * Server-side request forgery guard for webhook targets.
 *
 * Invariants:
 * - a URL is checked when it is registered and its host is resolved again before every
 *   delivery; the delivery then connects to exactly the address that passed the check (the
 *   socket's lookup is pinned), so a DNS answer that changes between check and connect
 *   (rebinding) cannot reach an internal address;
 * - private, loopback, link-local (cloud metadata at 169.254.169.254), CGNAT, multicast and
 *   reserved ranges are refused, for IPv4, IPv6 and IPv4-mapped IPv6, unless the operator set
 *   WEBHOOK_ALLOW_PRIVATE=true (tests and single-network installations);
 * - credentials in a URL are refused (they would sit in plain text in the endpoint list).
 */
import { lookup } from 'node:dns/promises';
import { BlockList, isIP } from 'node:net';
import { AppError } from '../../lib/errors.js';

const blocked = new BlockList();
for (const [net, prefix] of [
  ['0.0.0.0', 8],
  ['10.0.0.0', 8],
  ['100.64.0.0', 10],
  ['127.0.0.0', 8],
  ['169.254.0.0', 16],
  ['172.16.0.0', 12],
  ['192.0.0.0', 24],
  ['192.0.2.0', 24],
  ['192.88.99.0', 24],
  ['192.168.0.0', 16],
  ['198.18.0.0', 15],
  ['198.51.100.0', 24],
  ['203.0.113.0', 24],
  ['224.0.0.0', 4],
  ['240.0.0.0', 4],
] as const) {
  blocked.addSubnet(net, prefix, 'ipv4');
}
for (const [net, prefix] of [
  ['::', 128],
  ['::1', 128],
  ['64:ff9b::', 96],
  ['64:ff9b:1::', 48],
  ['100::', 64],
  ['2001::', 23],
  ['2001:db8::', 32],
  ['2002::', 16],
  ['fc00::', 7],
  ['fe80::', 10],
  ['fec0::', 10],
  ['ff00::', 8],
] as const) {
  blocked.addSubnet(net, prefix, 'ipv6');
}

/** The eight 16-bit groups of an IPv6 address (any textual form), or null when malformed. */
function ipv6Groups(address: string): number[] | null {
  let text = address.toLowerCase().replace(/%.*$/, '');
  const dotted = /(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(text);
  if (dotted) {
    const [a, b, c, d] = dotted.slice(1).map(Number) as [number, number, number, number];
    text = `${text.slice(0, dotted.index)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const halves = text.split('::');
  if (halves.length > 2) return null;
  const parse = (part: string) => (part === '' ? [] : part.split(':').map((g) => (/^[0-9a-f]{1,4}$/.test(g) ? parseInt(g, 16) : NaN)));
  const head = parse(halves[0]!);
  const tail = halves.length === 2 ? parse(halves[1]!) : [];
  const fill = 8 - head.length - tail.length;
  if (halves.length === 1 ? fill !== 0 : fill < 1) return null;
  const groups = [...head, ...Array<number>(halves.length === 2 ? fill : 0).fill(0), ...tail];
  return groups.some(Number.isNaN) ? null : groups;
}

/**
 * The IPv4 address an IPv6 address carries and a connection to it may reach: IPv4-mapped
 * (::ffff:0:0/96), IPv4-translated (::ffff:0:0:0/96) and the deprecated IPv4-compatible
 * (::/96) forms, in any notation (dotted or hex, compressed or not). Null for other addresses.
 */
function embeddedIpv4(groups: number[]): string | null {
  const zeros = (n: number) => groups.slice(0, n).every((g) => g === 0);
  const carries = (zeros(5) && (groups[5] === 0 || groups[5] === 0xffff)) || (zeros(4) && groups[4] === 0xffff && groups[5] === 0);
  if (!carries) return null;
  const [hi, lo] = [groups[6]!, groups[7]!];
  return `${hi >> 8}.${hi & 255}.${lo >> 8}.${lo & 255}`;
}

/** True for any address a webhook must not reach without WEBHOOK_ALLOW_PRIVATE. */
export function isPrivateAddress(address: string): boolean {
  const family = isIP(address);
  if (family === 4) return blocked.check(address, 'ipv4');
  if (family !== 6) return true;
  const groups = ipv6Groups(address);
  if (!groups) return true;
  // :: and ::1 come out as 0.0.0.0 and 0.0.0.1, which 0.0.0.0/8 refuses as well.
  const v4 = embeddedIpv4(groups);
  if (v4) return blocked.check(v4, 'ipv4');
  return blocked.check(address, 'ipv6');
}

export interface UrlPolicy {
  allowPrivate: boolean;
  requireHttps: boolean;
}

export type Resolver = (hostname: string) => Promise<{ address: string; family: number }[]>;

/**
 * getaddrinfo runs on libuv's thread pool (4 threads, shared with file I/O and crypto), and a
 * lookup that hangs holds its thread after resolveTarget has stopped waiting for it. So at most
 * this many of our lookups run at once; beyond that the attempt fails (and is retried later)
 * rather than starve the rest of the process.
 */
export const MAX_LOOKUPS_IN_FLIGHT = 2;

/** A resolver of `lookup` bounded to `max` lookups in flight. */
export function boundedResolver(lookupAll: Resolver, max = MAX_LOOKUPS_IN_FLIGHT): Resolver {
  let inFlight = 0;
  return async (hostname) => {
    if (inFlight >= max) throw new Error('too many lookups in flight');
    inFlight++;
    try {
      return await lookupAll(hostname);
    } finally {
      inFlight--;
    }
  };
}

export const systemResolver: Resolver = boundedResolver((hostname) => lookup(hostname, { all: true, verbatim: true }));

const refuse = (detail: string) => new AppError('webhook_url_refused', detail);

/** The URL, normalized, if its form is acceptable (no network access). */
export function parseWebhookUrl(raw: string, policy: UrlPolicy): URL {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw refuse('The URL is not valid');
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') throw refuse('The URL must use https');
  if (policy.requireHttps && url.protocol !== 'https:') throw refuse('The URL must use https');
  if (url.username || url.password) throw refuse('The URL must not contain credentials');
  if (url.hash) throw refuse('The URL must not contain a fragment');
  return url;
}

/** A lookup that hangs must not outlive the worker's lease on the delivery it is for. */
export const RESOLVE_TIMEOUT_MS = 5_000;

/**
 * Resolves the host and returns the address to connect to, or refuses. Every resolved
 * address must be public: a name with one private answer among public ones is refused.
 */
export async function resolveTarget(url: URL, policy: UrlPolicy, resolver: Resolver, timeoutMs = RESOLVE_TIMEOUT_MS): Promise<{ address: string; family: number }> {
  const host = url.hostname.replace(/^\[(.*)\]$/, '$1');
  let addresses: { address: string; family: number }[];
  if (isIP(host)) {
    addresses = [{ address: host, family: isIP(host) }];
  } else {
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error('timed out')), timeoutMs);
    });
    try {
      addresses = await Promise.race([resolver(host), deadline]);
    } catch {
      throw refuse('The host name does not resolve');
    } finally {
      clearTimeout(timer);
    }
  }
  if (addresses.length === 0) throw refuse('The host name does not resolve');
  if (!policy.allowPrivate && addresses.some((a) => isPrivateAddress(a.address))) {
    throw refuse('The URL points at a private, loopback or link-local address');
  }
  return addresses[0]!;
}
