/** Reads the `code` that Node.js, SQLite and our own errors carry, from anything thrown. */
export function errorCode(error: unknown): unknown {
  return error instanceof Error && 'code' in error ? error.code : undefined;
}
