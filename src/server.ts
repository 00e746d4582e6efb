/**
 * The process entry point: load config (stop with a named variable on error), build the app,
 * listen, and shut down gracefully on SIGTERM/SIGINT.
 */
import { buildApp } from './app.js';
import { ConfigError, loadConfig, type Config } from './config.js';
import { createLogger } from './lib/logger.js';

let config: Config;
try {
  config = loadConfig();
} catch (error) {
  if (error instanceof ConfigError) {
    process.stderr.write(`Configuration error: ${error.message}\n`);
    process.exit(1);
  }
  throw error;
}

const logger = createLogger(config.logLevel);
if (config.devSecrets.length > 0) {
  // Plain text on stderr for the person at the terminal, and a structured line for log tooling.
  const banner = '!'.repeat(78);
  process.stderr.write(
    `\n${banner}\n  DEVELOPMENT SECRETS IN USE: ${config.devSecrets.join(', ')} generated in ${config.dataDir}/dev-secrets.json\n` +
      `  They are for local development only. Set JWT_SECRET and ENCRYPTION_KEYS for real use.\n${banner}\n\n`,
  );
  logger.warn({ devSecrets: config.devSecrets }, 'DEVELOPMENT SECRETS IN USE: not for real data');
}

const app = await buildApp(config, { logger }).catch((error: unknown) => {
  logger.fatal({ err: error }, 'could not start');
  // No request has been served, so no PHI can be in it: the operator gets the whole message
  // (a refused password, a missing database, a read-only DATA_DIR), which the log omits for
  // database errors.
  process.stderr.write(`Could not start: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});

let closing = false;
for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  process.on(signal, () => {
    if (closing) return;
    closing = true;
    logger.info({ signal }, 'shutting down: finishing in-flight requests');
    const force = setTimeout(() => {
      logger.error('graceful shutdown timed out');
      process.exit(1);
    }, 10_000);
    force.unref();
    app.close().then(
      () => process.exit(0),
      (err: unknown) => {
        logger.error({ err }, 'error during shutdown');
        process.exit(1);
      },
    );
  });
}

await app.listen({ port: config.port, host: config.host });
const base = `http://${config.host === '0.0.0.0' ? 'localhost' : config.host}:${config.port}`;
logger.info(
  `SecureCare Messaging on ${base} (database: ${app.database.kind}). API docs: ${base}/docs. ` +
    'Dev token: npm run token -- --role staff --org demo --sub alice',
);
