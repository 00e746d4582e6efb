/**
 * The SSRF guard on its own: address classification (IPv4, IPv6, IPv4-mapped forms), URL
 * form rules, and resolution, where one private answer among public ones refuses the name.
 */
import t from 'tap';
import { boundedResolver, isPrivateAddress, parseWebhookUrl, resolveTarget, type Resolver } from '../../../src/modules/webhooks/webhook-url.js';
import { AppError } from '../../../src/lib/errors.js';

const strict = { allowPrivate: false, requireHttps: false };

t.test('address classification', async (t) => {
  for (const ip of [
    '10.0.0.1',
    '10.255.255.255',
    '127.0.0.1',
    '169.254.169.254',
    '172.16.0.1',
    '172.31.255.255',
    '192.168.0.1',
    '100.64.0.1',
    '0.0.0.0',
    '224.0.0.1',
    '255.255.255.255',
    '::1',
    '::',
    'fe80::1',
    'fc00::1',
    'fd12:3456::1',
    'ff02::1',
    '::ffff:10.0.0.1',
    '::ffff:127.0.0.1',
    '::ffff:a9fe:a9fe',
    '64:ff9b::a9fe:a9fe',
    // Embedded IPv4 in every notation: mapped, translated, compatible; hex or dotted; expanded.
    '0:0:0:0:0:ffff:a9fe:a9fe',
    '0000:0000:0000:0000:0000:ffff:7f00:0001',
    '::ffff:0:a9fe:a9fe',
    '::ffff:0:10.0.0.1',
    '::a9fe:a9fe',
    '::10.0.0.1',
    '::0.0.0.0',
    '::FFFF:A9FE:A9FE',
    'fe80::1%eth0',
    'not-an-ip',
  ]) {
    t.ok(isPrivateAddress(ip), `${ip} is refused`);
  }
  for (const ip of ['93.184.216.34', '8.8.8.8', '172.32.0.1', '11.0.0.1', '2606:4700:4700::1111', '::ffff:8.8.8.8', '::ffff:808:808', '0:0:0:0:0:ffff:0808:0808', '::ffff:0:8.8.8.8']) {
    t.notOk(isPrivateAddress(ip), `${ip} is public`);
  }
});

t.test('URL form', async (t) => {
  t.equal(parseWebhookUrl('https://hooks.example.org/a?b=c', strict).hostname, 'hooks.example.org');
  for (const bad of ['ftp://x.org/', 'file:///etc/passwd', 'https://u:p@x.org/', 'https://x.org/#f', 'javascript:alert(1)', '']) {
    t.throws(() => parseWebhookUrl(bad, strict), AppError, `${bad || '(empty)'} is refused`);
  }
  t.throws(() => parseWebhookUrl('http://x.org/', { allowPrivate: false, requireHttps: true }), AppError, 'http is refused where https is required');
});

t.test('resolution', async (t) => {
  const fake =
    (answers: Record<string, string[]>): Resolver =>
    async (host) => {
      const list = answers[host];
      if (!list) throw Object.assign(new Error('not found'), { code: 'ENOTFOUND' });
      return list.map((address) => ({ address, family: address.includes(':') ? 6 : 4 }));
    };
  const resolver = fake({ 'public.example': ['93.184.216.34'], 'mixed.example': ['93.184.216.34', '10.1.2.3'], 'meta.example': ['169.254.169.254'], 'v6.example': ['::1'] });
  t.same(await resolveTarget(new URL('https://public.example/x'), strict, resolver), { address: '93.184.216.34', family: 4 });
  for (const host of ['mixed.example', 'meta.example', 'v6.example', 'missing.example']) {
    await t.rejects(resolveTarget(new URL(`https://${host}/x`), strict, resolver), { code: 'webhook_url_refused' }, `${host} is refused`);
  }
  t.same(await resolveTarget(new URL('https://meta.example/x'), { allowPrivate: true, requireHttps: false }, resolver), { address: '169.254.169.254', family: 4 }, 'allowed under the flag');
  const hanging: Resolver = () => new Promise(() => {});
  // Hung lookups keep their (thread-pool) slot after we stop waiting: new ones are refused.
  let release: () => void = () => undefined;
  let calls = 0;
  const answer = [{ address: '93.184.216.34', family: 4 }];
  const stuck = boundedResolver(() => (calls++ === 0 ? new Promise((resolve) => (release = () => resolve(answer))) : Promise.resolve(answer)), 1);
  await t.rejects(resolveTarget(new URL('https://slow.example/x'), strict, stuck, 20), { code: 'webhook_url_refused' }, 'the first lookup times out');
  await t.rejects(stuck('other.example'), /too many lookups in flight/, 'and still holds its slot, so the next is refused at once');
  release();
  await new Promise((r) => setImmediate(r));
  t.same(await stuck('again.example'), [{ address: '93.184.216.34', family: 4 }], 'once it settles, lookups run again');
  await t.rejects(resolveTarget(new URL('https://slow.example/x'), strict, hanging, 50), { code: 'webhook_url_refused' }, 'a lookup that never answers is cut off');
  t.same(await resolveTarget(new URL('http://[::ffff:8.8.8.8]/'), strict, resolver), { address: '::ffff:808:808', family: 6 }, 'an IP literal needs no lookup');
});
