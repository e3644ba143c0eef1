/**
 * The admin CLI, `jwks-server <group> <command>`, on the database the server uses (the same
 * environment variables): it finds the command, checks its arguments, then runs it. Results go
 * to stdout, problems to stderr, and the exit code says which: 0 done, 1 failed, 2 wrong usage,
 * 3 no such key or client.
 */
import { parseArgs } from 'node:util';
import { systemClock } from '../common/clock.js';
import { openDatabase } from '../database/connection.js';
import { InvalidClientSettingsError } from '../oauth/clients.js';
import { EXIT_FAILED, EXIT_OK, EXIT_USAGE, UsageError, type CommandRun, type Output } from './admin-cli-command.js';
import { clientCommands } from './admin-cli-clients.js';
import { databaseCommands } from './admin-cli-db.js';
import { keyCommands } from './admin-cli-keys.js';
import { ConfigError, loadConfig, type ServerConfig } from './config.js';

export { EXIT_FAILED, EXIT_NOT_FOUND, EXIT_OK, EXIT_USAGE } from './admin-cli-command.js';

const GROUPS = { keys: keyCommands, clients: clientCommands, db: databaseCommands };

const USAGE = `Usage: jwks-server keys <command>
       jwks-server clients <command>
       jwks-server db <command>

${keyCommands.usage}

${clientCommands.usage}

${databaseCommands.usage}

Every group reads DATABASE_URL, NOT_MY_KEY, ALGORITHMS, KEY_TTL, TOKEN_TTL, JWKS_MAX_AGE and
EXPIRED_KEY_RETENTION like the server. Exit codes: 0 done, 1 failed, 2 usage, 3 no such key or
client.`;

// Every group's options, so that options may stand before the group and the command.
const OPTIONS = { ...keyCommands.options, ...clientCommands.options, ...databaseCommands.options, help: { type: 'boolean', short: 'h' } } as const;

const isGroupName = (name: string): name is keyof typeof GROUPS => Object.hasOwn(GROUPS, name);

/** The command `args` name, to be given the configuration it checks its arguments against; undefined for --help. */
function findCommand(args: readonly string[]): ((config: ServerConfig) => CommandRun) | undefined {
  const { values, positionals } = parseArgs({ args: [...args], allowPositionals: true, options: OPTIONS });
  if (values.help === true) return undefined;
  const [groupName, commandName, ...operands] = positionals;
  if (groupName === undefined || !isGroupName(groupName) || commandName === undefined) throw new UsageError('expected "keys", "clients" or "db", and a command');
  const group = GROUPS[groupName];
  const foreign = Object.keys(values).find((name) => !Object.hasOwn(group.options, name));
  if (foreign !== undefined) throw new UsageError(`${groupName} commands take no --${foreign}`);
  // Own properties only: "constructor" names no command.
  const command = Object.hasOwn(group.commands, commandName) ? group.commands[commandName] : undefined;
  if (command === undefined) throw new UsageError(`unknown command ${JSON.stringify(commandName)}`);
  return (config) => command(values, operands, config);
}

async function runCommand(args: readonly string[], env: NodeJS.ProcessEnv, output: Output): Promise<number> {
  const prepare = findCommand(args);
  if (prepare === undefined) {
    output.out(USAGE);
    return EXIT_OK;
  }
  const config = loadConfig(env);
  const run = prepare(config);
  const db = await openDatabase(config.databaseUrl, { mustExist: true, poolSize: config.databasePoolSize });
  try {
    return await run({ db, config, now: systemClock(), output });
  } finally {
    await db.destroy();
  }
}

// A client's id and settings come from the command line: one that cannot be registered is wrong usage.
function isWrongUsage(error: unknown): error is Error {
  const parseArgsError = error instanceof TypeError && 'code' in error && String(error.code).startsWith('ERR_PARSE_ARGS');
  return parseArgsError || error instanceof UsageError || error instanceof InvalidClientSettingsError;
}

/** Runs the CLI on `args` (without `node` and the script) and returns its exit code. */
export async function main(args: readonly string[], env: NodeJS.ProcessEnv = process.env, output: Output = { out: console.log, err: console.error }): Promise<number> {
  try {
    return await runCommand(args, env, output);
  } catch (error) {
    if (isWrongUsage(error)) {
      output.err(`jwks-server: ${error.message}\n\n${USAGE}`);
      return EXIT_USAGE;
    }
    const message = error instanceof ConfigError ? `invalid configuration: ${error.message}` : error instanceof Error ? error.message : String(error);
    output.err(`jwks-server: ${message}`);
    return EXIT_FAILED;
  }
}
