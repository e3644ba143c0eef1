/** Generated passwords and their argon2id hashes. */
import { randomUUID } from 'node:crypto';
import { hash, verify } from '@node-rs/argon2';
import { argon2idOptions } from './argon2id.js';

/** A new random password: a UUIDv4, 122 bits of randomness. */
export function generatePassword(): string {
  return randomUUID();
}

/** The argon2id PHC string (`$argon2id$v=19$m=19456,t=2,p=1$…`) to store instead of the password. */
export function hashPassword(password: string): Promise<string> {
  return hash(password, argon2idOptions());
}

export function verifyPassword(passwordHash: string, password: string): Promise<boolean> {
  return verify(passwordHash, password);
}
