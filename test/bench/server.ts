/**
 * Bench helpers: start the real server as a child process on PostgreSQL and sample its RSS
 * from /proc, so the figures are the server's own, not the load generator's.
 *
 * The server runs as it does in production: compiled (`npm run build`, done once per bench
 * process) and started with `node dist/server.js`. BENCH_SERVER=tsx runs the sources through
 * tsx instead (its loader adds about 100 MiB of RSS).
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { readFileSync, mkdtempSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createSigner } from 'fast-jwt';

const ROOT = path.resolve(import.meta.dirname, '../..');

export interface BenchServer {
  base: string;
  pid: number;
  orgId: string;
  token(role: string, extra?: Record<string, string>): string;
  rssBytes(): number;
  /** The kernel's high-water mark of the server's RSS (VmHWM) since the last resetPeakRss(). */
  peakRssBytes(): number;
  /** Resets VmHWM to the current RSS (`5` written to /proc/<pid>/clear_refs); false where that is not allowed. */
  resetPeakRss(): boolean;
  stop(): Promise<void>;
}

export async function startServer(env: Record<string, string> = {}): Promise<BenchServer> {
  const databaseUrl = process.env.DATABASE_URL;
  if (!databaseUrl) throw new Error('set DATABASE_URL (the benches run against PostgreSQL)');
  const secret = randomBytes(32).toString('hex');
  const port = await freePort();
  // BENCH_NODE_ARGS: extra node flags for the server, e.g. `--cpu-prof --cpu-prof-dir=/tmp/prof`.
  const nodeArgs = (process.env.BENCH_NODE_ARGS ?? '').split(' ').filter(Boolean);
  const entry = process.env.BENCH_SERVER === 'tsx' ? ['--import', 'tsx', 'src/server.ts'] : [builtServer()];
  const child: ChildProcess = spawn(process.execPath, [...nodeArgs, ...entry], {
    cwd: ROOT,
    env: {
      ...process.env,
      NODE_ENV: 'production',
      LOG_LEVEL: 'warn',
      PORT: String(port),
      DATA_DIR: mkdtempSync(path.join(tmpdir(), 'sc-bench-')),
      DATABASE_URL: databaseUrl,
      JWT_SECRET: secret,
      ENCRYPTION_KEYS: `v1:${randomBytes(32).toString('base64')}`,
      AUDIT_CHECKPOINT_KEY: randomBytes(32).toString('base64'),
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout!.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (output += d.toString()));
  const deadline = Date.now() + 60_000;
  const base = `http://127.0.0.1:${port}`;
  for (;;) {
    if (Date.now() > deadline || child.exitCode !== null) throw new Error(`server did not start: ${output.slice(-2000)}`);
    const up = await fetch(`${base}/healthz`).then((r) => r.ok, () => false);
    if (up) break;
    await new Promise((r) => setTimeout(r, 200));
  }
  const orgId = `bench-${randomBytes(6).toString('hex')}`;
  const sign = createSigner({ key: secret, algorithm: 'HS256', expiresIn: 3_600_000 });
  return {
    base,
    pid: child.pid!,
    orgId,
    token: (role, extra = {}) => sign({ sub: `${role}-bench`, org: orgId, role, name: `Bench ${role}`, ...extra }),
    rssBytes: () => statusKiB(child.pid!, 'VmRSS') * 1024,
    peakRssBytes: () => statusKiB(child.pid!, 'VmHWM') * 1024,
    resetPeakRss: () => {
      try {
        writeFileSync(`/proc/${child.pid}/clear_refs`, '5');
        return true;
      } catch {
        return false;
      }
    },
    stop: () =>
      new Promise((resolve) => {
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
      }),
  };
}

let built = false;
/** Compiles src/ to dist/ once per bench process, so the bench measures the current code. */
function builtServer(): string {
  if (!built) {
    execFileSync(process.execPath, [path.join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.build.json'], { cwd: ROOT, stdio: 'inherit' });
    built = true;
  }
  return 'dist/server.js';
}

/** A free local port: bind to 0, read the port, release it. */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const { port } = probe.address() as AddressInfo;
      probe.close(() => resolve(port));
    });
  });
}

/** Samples RSS every 20 ms while `work` runs; returns the peak. */
/** A field of /proc/<pid>/status, in kB. */
function statusKiB(pid: number, field: 'VmRSS' | 'VmHWM'): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  return Number(new RegExp(`${field}:\\s+(\\d+) kB`).exec(status)?.[1] ?? 0);
}

/**
 * The server's peak RSS while `work` runs: the kernel's own high-water mark (VmHWM, reset
 * first), which no sampling interval can miss. Where the reset is refused, it falls back to
 * sampling VmRSS every 20 ms from this process, which can miss short peaks.
 */
export async function peakRssDuring<T>(server: BenchServer, work: () => Promise<T>): Promise<{ result: T; peak: number }> {
  if (server.resetPeakRss()) {
    const result = await work();
    return { result, peak: server.peakRssBytes() };
  }
  let peak = server.rssBytes();
  const timer = setInterval(() => {
    peak = Math.max(peak, server.rssBytes());
  }, 20);
  try {
    const result = await work();
    peak = Math.max(peak, server.rssBytes());
    return { result, peak };
  } finally {
    clearInterval(timer);
  }
}
