/**
 * What a command of the admin CLI is, and what every group of commands uses: the exit codes,
 * wrong usage, where results and problems go, and the table format.
 */
import type { ParseArgsConfig } from 'node:util';
import type { Kysely } from 'kysely';
import type { Database } from '../database/schema.js';
import type { ServerConfig } from './config.js';

type ParseArgsOptionsConfig = NonNullable<ParseArgsConfig['options']>;

export const EXIT_OK = 0;
export const EXIT_FAILED = 1;
export const EXIT_USAGE = 2;
export const EXIT_NOT_FOUND = 3;

/** Wrong usage: the message is printed with the usage text. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}

/** Results go to `out` (stdout), problems to `err` (stderr). */
export interface Output {
  out(text: string): void;
  err(text: string): void;
}

export interface Context {
  db: Kysely<Database>;
  config: ServerConfig;
  now: number;
  output: Output;
}

/** What a command does once its arguments are checked; resolves to the exit code. */
export type CommandRun = (context: Context) => Promise<number>;

/**
 * A command checks its options and operands first, throwing {@link UsageError}, so that wrong
 * usage is told before any database is opened.
 */
export type Command<Options> = (options: Options, operands: readonly string[], config: ServerConfig) => CommandRun;

/** The values `parseArgs` reads for the options `Config` describes (none of them repeatable). */
export type OptionValues<Config extends ParseArgsOptionsConfig> = { [Name in keyof Config]?: Config[Name]['type'] extends 'string' ? string : boolean };

/** The commands of `jwks-server <group> <command>`, the options they take and their part of the usage text. */
export interface CommandGroup<Config extends ParseArgsOptionsConfig> {
  options: Config;
  commands: Readonly<Record<string, Command<OptionValues<Config>>>>;
  usage: string;
}

/** Rows of cells in columns two spaces apart, the first row being the header. */
export function formatTable(rows: readonly (readonly string[])[]): string {
  const widths = rows[0]?.map((_cell, column) => Math.max(...rows.map((row) => row[column]?.length ?? 0))) ?? [];
  return rows.map((row) => row.map((cell, column) => cell.padEnd(widths[column] ?? 0)).join('  ').trimEnd()).join('\n');
}
