/** argon2id, through @node-rs/argon2 (hashing runs on libuv's threadpool, off the event loop). */
import type { Algorithm, Options } from '@node-rs/argon2';

// The library's Algorithm is an ambient const enum, which verbatimModuleSyntax cannot reference;
// 2 is its Argon2id member.
// eslint-disable-next-line @typescript-eslint/no-unsafe-enum-assignment
const ARGON2ID: Algorithm = 2;

export interface Argon2idCost {
  /** KiB of memory. */
  memoryCost: number;
  timeCost: number;
  parallelism: number;
}

/** OWASP's recommended minimum for argon2id (Password Storage Cheat Sheet): m = 19 MiB, t = 2, p = 1. */
export const OWASP_ARGON2ID_COST: Argon2idCost = { memoryCost: 19_456, timeCost: 2, parallelism: 1 };

export function argon2idOptions(cost: Argon2idCost = OWASP_ARGON2ID_COST): Options {
  return { algorithm: ARGON2ID, ...cost };
}
