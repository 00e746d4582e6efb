import t, { type Test } from 'tap';
import { existsSync, mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { ConfigError, loadConfig } from '../src/config.js';

const tmp = () => mkdtempSync(path.join(tmpdir(), 'sc-config-'));
const KEYS = `v1:${randomBytes(32).toString('base64')}`;
const SECRET = randomBytes(32).toString('hex');
const CHECKPOINT_KEY = randomBytes(32).toString('base64');

function refuses(t: Test, env: Record<string, string>, variable: string) {
  try {
    loadConfig({ DATA_DIR: tmp(), ...env });
    t.fail(`expected ${variable} to be refused`);
  } catch (error) {
    t.type(error, ConfigError);
    t.equal((error as ConfigError).variable, variable, `the error names ${variable}`);
    t.match((error as Error).message, new RegExp(`^${variable}:`));
  }
}

t.test('defaults for development', async (t) => {
  const dir = tmp();
  const config = loadConfig({ DATA_DIR: dir });
  t.equal(config.port, 3000);
  t.equal(config.host, '127.0.0.1');
  t.equal(config.databaseUrl, undefined, 'embedded database by default');
  t.equal(config.pgliteDir, path.join(dir, 'pglite'));
  t.equal(config.mailDir, path.join(dir, 'mail'));
  t.equal(config.portalUrl, 'http://localhost:3000/portal');
  t.equal(config.blobStore, 'postgres');
  t.equal(config.redisUrl, undefined);
  t.equal(config.databasePoolSize, 10);
  t.equal(config.databasePreparedStatements, true, 'prepared statements by default');
  t.same(config.devSecrets.sort(), ['AUDIT_CHECKPOINT_KEY', 'ENCRYPTION_KEYS', 'JWT_SECRET']);
  const file = path.join(dir, 'dev-secrets.json');
  t.ok(existsSync(file), 'dev secrets are generated in DATA_DIR');
  const again = loadConfig({ DATA_DIR: dir });
  t.equal(again.encryptionKeys, config.encryptionKeys, 'and reused on the next start');
  t.equal(JSON.parse(readFileSync(file, 'utf8')).encryptionKeys, config.encryptionKeys);
});

t.test('every variable is read and validated', async (t) => {
  const config = loadConfig({
    DATA_DIR: tmp(),
    PORT: '8080',
    HOST: '0.0.0.0',
    DATABASE_URL: 'postgres://u@db:5432/x',
    REDIS_URL: 'redis://cache:6379',
    JWT_SECRET: SECRET,
    ENCRYPTION_KEYS: KEYS,
    AUDIT_CHECKPOINT_KEY: CHECKPOINT_KEY,
    SMTP_URL: 'smtp://mail:25',
    MAIL_FROM: 'Care <care@example.org>',
    MAIL_DIR: '/tmp/pickup',
    PORTAL_URL: 'https://portal.example.org/messages',
    BLOB_STORE: 's3://phi-bucket',
    DATABASE_POOL_SIZE: '25',
    DATABASE_PREPARED_STATEMENTS: 'false',
  });
  t.match(config, {
    databasePoolSize: 25,
    databasePreparedStatements: false,
    port: 8080,
    host: '0.0.0.0',
    databaseUrl: 'postgres://u@db:5432/x',
    redisUrl: 'redis://cache:6379',
    jwt: { kind: 'secret', secret: SECRET },
    encryptionKeys: KEYS,
    smtpUrl: 'smtp://mail:25',
    mailFrom: 'Care <care@example.org>',
    mailDir: '/tmp/pickup',
    portalUrl: 'https://portal.example.org/messages',
    blobStore: { kind: 's3', bucket: 'phi-bucket' },
  });
  t.same(config.devSecrets, [], 'no dev secrets when real ones are set');
});

t.test('a bad value stops start-up with a message naming the variable', async (t) => {
  const real = { JWT_SECRET: SECRET, ENCRYPTION_KEYS: KEYS };
  refuses(t, { ...real, PORT: 'eighty' }, 'PORT');
  refuses(t, { ...real, PORT: '70000' }, 'PORT');
  refuses(t, { ...real, DATABASE_URL: 'mysql://x' }, 'DATABASE_URL');
  refuses(t, { ...real, DATABASE_URL: 'not a url' }, 'DATABASE_URL');
  refuses(t, { ...real, REDIS_URL: 'http://x' }, 'REDIS_URL');
  refuses(t, { ...real, SMTP_URL: 'ftp://x' }, 'SMTP_URL');
  refuses(t, { ...real, PORTAL_URL: 'javascript:alert(1)' }, 'PORTAL_URL');
  refuses(t, { ...real, BLOB_STORE: 'disk' }, 'BLOB_STORE');
  refuses(t, { ...real, MAIL_FROM: 'nobody' }, 'MAIL_FROM');
  refuses(t, { ...real, LOG_LEVEL: 'loud' }, 'LOG_LEVEL');
  refuses(t, { ...real, TRUST_PROXY: 'maybe' }, 'TRUST_PROXY');
  refuses(t, { ...real, DATABASE_POOL_SIZE: '0' }, 'DATABASE_POOL_SIZE');
  refuses(t, { ...real, DATABASE_POOL_SIZE: '500' }, 'DATABASE_POOL_SIZE');
  refuses(t, { ...real, DATABASE_PREPARED_STATEMENTS: 'sometimes' }, 'DATABASE_PREPARED_STATEMENTS');
  refuses(t, { JWT_SECRET: SECRET, ENCRYPTION_KEYS: 'v1:tooshort' }, 'ENCRYPTION_KEYS');
  refuses(t, { JWT_SECRET: 'short', ENCRYPTION_KEYS: KEYS }, 'JWT_SECRET');
  refuses(t, { ...real, AUDIT_CHECKPOINT_KEY: 'c2hvcnQ=' }, 'AUDIT_CHECKPOINT_KEY');
  refuses(t, { JWT_PUBLIC_KEY: 'not a pem', ENCRYPTION_KEYS: KEYS }, 'JWT_PUBLIC_KEY');
  refuses(t, { JWT_SECRET: SECRET, JWT_PUBLIC_KEY: '-----BEGIN PUBLIC KEY-----x', ENCRYPTION_KEYS: KEYS }, 'JWT_SECRET');
});

t.test('production refuses to start without real secrets and never touches DATA_DIR for them', async (t) => {
  const dir = tmp();
  refuses(t, { NODE_ENV: 'production', DATA_DIR: dir, ENCRYPTION_KEYS: KEYS }, 'JWT_SECRET');
  refuses(t, { NODE_ENV: 'production', DATA_DIR: dir, JWT_SECRET: SECRET }, 'ENCRYPTION_KEYS');
  refuses(t, { NODE_ENV: 'production', DATA_DIR: dir, JWT_SECRET: SECRET, ENCRYPTION_KEYS: KEYS }, 'AUDIT_CHECKPOINT_KEY');
  t.same(readdirSync(dir), [], 'nothing was written to DATA_DIR');
  // A misspelt production must not fall back to development (dev secrets, bench routes).
  for (const nodeEnv of ['prod', 'Production', 'staging']) refuses(t, { NODE_ENV: nodeEnv, DATA_DIR: dir, BENCH_MODE: 'true' }, 'NODE_ENV');
  t.same(readdirSync(dir), [], 'nor by an unknown NODE_ENV');
  const config = loadConfig({ NODE_ENV: 'production', DATA_DIR: dir, JWT_SECRET: SECRET, ENCRYPTION_KEYS: KEYS, AUDIT_CHECKPOINT_KEY: CHECKPOINT_KEY });
  t.equal(config.env, 'production');
  t.same(config.devSecrets, []);
  t.same(readdirSync(dir), [], 'still nothing in DATA_DIR');
});

t.test('BLOB_STORE=s3://bucket: endpoint, region, path style and credentials', async (t) => {
  const real = { DATA_DIR: tmp(), JWT_SECRET: SECRET, ENCRYPTION_KEYS: KEYS };
  t.same(loadConfig({ ...real, BLOB_STORE: 's3://phi-docs' }).blobStore, {
    kind: 's3',
    bucket: 'phi-docs',
    endpoint: undefined,
    region: 'us-east-1',
    forcePathStyle: false,
    credentials: undefined,
  }, 'AWS itself, us-east-1, virtual-hosted style, the SDK\'s credential chain');
  const minio = loadConfig({
    ...real,
    BLOB_STORE: 's3://phi-docs/',
    S3_ENDPOINT: 'http://127.0.0.1:9000/',
    S3_REGION: 'eu-central-1',
    S3_FORCE_PATH_STYLE: 'true',
    AWS_ACCESS_KEY_ID: 'AKIDEXAMPLE',
    AWS_SECRET_ACCESS_KEY: 'secret-example',
    AWS_SESSION_TOKEN: 'token-example',
  });
  t.same(minio.blobStore, {
    kind: 's3',
    bucket: 'phi-docs',
    endpoint: 'http://127.0.0.1:9000',
    region: 'eu-central-1',
    forcePathStyle: true,
    credentials: { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'secret-example', sessionToken: 'token-example' },
  });
  t.equal(loadConfig({ ...real, BLOB_STORE: 'postgres', AWS_ACCESS_KEY_ID: 'AKID' }).blobStore, 'postgres', 'AWS keys alone are not an S3 setting (other tools use them)');

  const s3 = { ...real, BLOB_STORE: 's3://phi-docs' };
  refuses(t, { ...s3, S3_ENDPOINT: 'ftp://minio:21' }, 'S3_ENDPOINT');
  refuses(t, { ...s3, S3_ENDPOINT: 'minio:9000' }, 'S3_ENDPOINT');
  refuses(t, { ...s3, S3_ENDPOINT: 'http://minio:9000/phi-docs' }, 'S3_ENDPOINT');
  refuses(t, { ...s3, S3_ENDPOINT: 'http://key:secret@minio:9000' }, 'S3_ENDPOINT');
  refuses(t, { ...s3, S3_REGION: 'EU Central' }, 'S3_REGION');
  refuses(t, { ...s3, S3_FORCE_PATH_STYLE: 'sometimes' }, 'S3_FORCE_PATH_STYLE');
  refuses(t, { ...s3, AWS_ACCESS_KEY_ID: 'AKID' }, 'AWS_SECRET_ACCESS_KEY');
  refuses(t, { ...s3, AWS_SECRET_ACCESS_KEY: 'secret' }, 'AWS_ACCESS_KEY_ID');
  refuses(t, { ...s3, AWS_SESSION_TOKEN: 'token' }, 'AWS_SESSION_TOKEN');
  refuses(t, { ...real, S3_ENDPOINT: 'http://127.0.0.1:9000' }, 'S3_ENDPOINT');
  refuses(t, { ...real, BLOB_STORE: 'postgres', S3_FORCE_PATH_STYLE: 'true' }, 'S3_FORCE_PATH_STYLE');
});
