import { describe, expect, it, onTestFinished, vi } from 'vitest';
import { DatabaseOpenError, MigrationError } from '../src/database/connection.js';
import { KeyEncryptionError } from '../src/keys/key-cipher.js';
import { describeStartupFailure, exitForStartupFailure } from '../src/server/startup-failure.js';

const config = { host: '198.51.100.7', port: 8443, databaseUrl: '/var/lib/jwks/keys.db' };

function systemError(code: string): Error {
  return Object.assign(new Error(`listen ${code}`), { code });
}

describe('describeStartupFailure', () => {
  it('names DATABASE_URL for a database that cannot be opened or migrated, with the reason', () => {
    const cause = new Error('unable to open database file');
    expect(describeStartupFailure(new DatabaseOpenError('cannot open it', { cause }), config)).toBe(
      'DATABASE_URL "/var/lib/jwks/keys.db" cannot be used: cannot open it: unable to open database file',
    );
    expect(describeStartupFailure(new MigrationError('database migration 0001-create-keys failed'), config)).toBe(
      'DATABASE_URL "/var/lib/jwks/keys.db" cannot be used: database migration 0001-create-keys failed',
    );
  });

  it('passes on what a key encryption failure says, which names NOT_MY_KEY', () => {
    const error = new KeyEncryptionError('NOT_MY_KEY is not the secret the private keys in this database were encrypted with');
    expect(describeStartupFailure(error, config)).toBe(error.message);
  });

  it('names PORT when the port is taken or privileged', () => {
    expect(describeStartupFailure(systemError('EADDRINUSE'), config)).toBe('PORT 8443 is already in use on 198.51.100.7');
    expect(describeStartupFailure(systemError('EACCES'), config)).toBe('PORT 8443 needs privileges this process does not have');
  });

  it('names METRICS_PORT when that is the listener that failed', () => {
    expect(describeStartupFailure(systemError('EADDRINUSE'), { ...config, port: 9464 }, 'METRICS_PORT')).toBe('METRICS_PORT 9464 is already in use on 198.51.100.7');
  });

  it.each(['EADDRNOTAVAIL', 'ENOTFOUND', 'EAI_AGAIN'])('names HOST for %s', (code) => {
    expect(describeStartupFailure(systemError(code), config)).toBe('HOST "198.51.100.7" is not an address this machine can listen on');
  });

  it('leaves any other failure unexplained, to be reported as it is', () => {
    expect(describeStartupFailure(new TypeError('a bug'), config)).toBeUndefined();
    expect(describeStartupFailure(systemError('ENOMEM'), config)).toBeUndefined();
    expect(describeStartupFailure('not even an error', config)).toBeUndefined();
  });
});

describe('exitForStartupFailure', () => {
  it('prints the explanation in one line and exits 1', () => {
    const exit = vi.spyOn(process, 'exit').mockImplementation(() => {
      throw new Error('exited');
    });
    const printed = vi.spyOn(console, 'error').mockImplementation(() => undefined);
    onTestFinished(() => {
      exit.mockRestore();
      printed.mockRestore();
    });
    expect(() => exitForStartupFailure(systemError('EADDRINUSE'), config)).toThrow('exited');
    expect(printed).toHaveBeenCalledExactlyOnceWith('Cannot start: PORT 8443 is already in use on 198.51.100.7');
    expect(exit).toHaveBeenCalledExactlyOnceWith(1);
  });

  it('rethrows a failure no setting explains, for the process to end with its stack', () => {
    const bug = new TypeError('a bug');
    expect(() => exitForStartupFailure(bug, config)).toThrow(bug);
  });
});
