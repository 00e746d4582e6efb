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

/** True for any address a webhook must not reach without WEBHOOK_ALLOW_PRIVATE. */
export function isPrivateAddress(address: string): boolean {
  const family = isIP(address);
  if (family === 4) return blocked.check(address, 'ipv4');
  if (family !== 6) return true;
  // IPv4-mapped (::ffff:a.b.c.d) and IPv4-compatible forms are judged as the IPv4 address.
  const mapped = /^(?:0{0,4}:){0,5}(?:ffff:)?(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  if (mapped) return blocked.check(mapped[1]!, 'ipv4');
  const hexMapped = /^::ffff:([0-9a-f]{1,4}):([0-9a-f]{1,4})$/i.exec(address);
  if (hexMapped) {
    const hi = parseInt(hexMapped[1]!, 16);
    const lo = parseInt(hexMapped[2]!, 16);
    return blocked.check(`${hi >> 8}.${hi & 255}.${lo >> 8}.${lo & 255}`, 'ipv4');
  }
  return blocked.check(address, 'ipv6');
}

export interface UrlPolicy {
  allowPrivate: boolean;
  requireHttps: boolean;
}

export type Resolver = (hostname: string) => Promise<{ address: string; family: number }[]>;

export const systemResolver: Resolver = (hostname) => lookup(hostname, { all: true, verbatim: true });

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

/**
 * Resolves the host and returns the address to connect to, or refuses. Every resolved
 * address must be public: a name with one private answer among public ones is refused.
 */
export async function resolveTarget(url: URL, policy: UrlPolicy, resolver: Resolver): Promise<{ address: string; family: number }> {
  const host = url.hostname.replace(/^\[(.*)\]$/, '$1');
  let addresses: { address: string; family: number }[];
  if (isIP(host)) {
    addresses = [{ address: host, family: isIP(host) }];
  } else {
    try {
      addresses = await resolver(host);
    } catch {
      throw refuse('The host name does not resolve');
    }
  }
  if (addresses.length === 0) throw refuse('The host name does not resolve');
  if (!policy.allowPrivate && addresses.some((a) => isPrivateAddress(a.address))) {
    throw refuse('The URL points at a private, loopback or link-local address');
  }
  return addresses[0]!;
}
