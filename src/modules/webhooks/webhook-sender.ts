/**
 * One HTTP POST of a signed delivery. The connection goes to the address the SSRF check
 * approved (the socket's DNS lookup is pinned to it); TLS still verifies the URL's host name.
 * Redirects are not followed (a 3xx is a failed attempt), the answer's body is read and
 * dropped up to a small cap, and the whole attempt is bounded by a timeout.
 */
import http from 'node:http';
import https from 'node:https';
import type { LookupFunction } from 'node:net';

export interface WebhookRequest {
  url: URL;
  address: string;
  family: number;
  headers: Record<string, string>;
  body: string;
  timeoutMs: number;
}

export type WebhookSender = (request: WebhookRequest) => Promise<{ status: number }>;

const MAX_RESPONSE_BYTES = 64 * 1024;

export const httpWebhookSender: WebhookSender = (request) =>
  new Promise((resolve, reject) => {
    const pinned: LookupFunction = (_hostname, options, callback) => {
      if (options.all) callback(null, [{ address: request.address, family: request.family }]);
      else callback(null, request.address, request.family);
    };
    const client = request.url.protocol === 'https:' ? https : http;
    const req = client.request(
      request.url,
      {
        method: 'POST',
        headers: { ...request.headers, 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(request.body)) },
        lookup: pinned,
        timeout: request.timeoutMs,
        agent: false,
      },
      (res) => {
        let seen = 0;
        res.on('data', (chunk: Buffer) => {
          seen += chunk.length;
          if (seen > MAX_RESPONSE_BYTES) res.destroy();
        });
        res.on('close', () => resolve({ status: res.statusCode ?? 0 }));
        res.on('error', () => resolve({ status: res.statusCode ?? 0 }));
      },
    );
    const deadline = setTimeout(() => req.destroy(new Error('timed out')), request.timeoutMs);
    req.on('close', () => clearTimeout(deadline));
    req.on('timeout', () => req.destroy(new Error('timed out')));
    req.on('error', (error) => reject(error));
    req.end(request.body);
  });
