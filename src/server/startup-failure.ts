/** Explains a failure to start in one line that names the setting at fault. */
import type { ServerConfig } from './config.js';
import { DatabaseOpenError, MigrationError } from '../database/connection.js';
import { describeDatabaseLocation, parseDatabaseUrl } from '../database/location.js';
import { errorCode } from '../common/error-code.js';
import { KeyEncryptionError } from '../keys/key-cipher.js';

function withCause(error: Error): string {
  return error.cause instanceof Error ? `${error.message}: ${error.cause.message}` : error.message;
}

/**
 * The explanation, or `undefined` for a failure no setting explains (a bug, to be reported as is).
 * `portVariable` names the setting of the port that was being listened on: PORT, or METRICS_PORT.
 */
export function describeStartupFailure(error: unknown, config: Pick<ServerConfig, 'host' | 'port' | 'databaseUrl'>, portVariable = 'PORT'): string | undefined {
  if (error instanceof DatabaseOpenError || error instanceof MigrationError) {
    // Never the password of a PostgreSQL URL.
    const database = describeDatabaseLocation(parseDatabaseUrl(config.databaseUrl));
    return `DATABASE_URL ${JSON.stringify(database)} cannot be used: ${withCause(error)}`;
  }
  // Its message names NOT_MY_KEY already.
  if (error instanceof KeyEncryptionError) return error.message;
  switch (errorCode(error)) {
    case 'EADDRINUSE':
      return `${portVariable} ${String(config.port)} is already in use on ${config.host}`;
    case 'EACCES':
      return `${portVariable} ${String(config.port)} needs privileges this process does not have`;
    case 'EADDRNOTAVAIL':
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return `HOST ${JSON.stringify(config.host)} is not an address this machine can listen on`;
    default:
      return undefined;
  }
}

/**
 * Says in one line why the server cannot start, naming the setting at fault, and exits 1; a
 * failure no setting explains is rethrown as it is, to end the process with its stack.
 */
export function exitForStartupFailure(error: unknown, config: Pick<ServerConfig, 'host' | 'port' | 'databaseUrl'>, portVariable = 'PORT'): never {
  const explanation = describeStartupFailure(error, config, portVariable);
  if (explanation === undefined) throw error;
  console.error(`Cannot start: ${explanation}`);
  process.exit(1);
}
