import { once } from 'node:events';
import { createServer, type AddressInfo } from 'node:net';
import { join } from 'node:path';
import { describe, expect, it, onTestFinished } from 'vitest';
import { newTestDatabase, temporaryDirectory, testDialect } from './helpers.js';
import { runServerToExit, startServer } from './server-process.js';

const onSqlite = testDialect === 'sqlite';

describe('the standalone server refuses to start, naming the setting at fault,', () => {
  async function failedStart(variables: Record<string, string>): Promise<{ code: number | null; stderr: string }> {
    const { code, stderr } = await runServerToExit({ LOG_LEVEL: 'silent', ...variables });
    return { code, stderr };
  }

  it('for a malformed variable', async () => {
    expect(await failedStart({ PORT: 'eighty' })).toEqual({
      code: 1,
      stderr: 'Invalid configuration: PORT must be a whole number from 0 to 65535 (got "eighty")\n',
    });
  });

  it.runIf(!onSqlite)('for a PostgreSQL server it cannot reach, never printing the password', async () => {
    const { code, stderr } = await failedStart({ PORT: '0', DATABASE_URL: 'postgres://jwks:s3cret@127.0.0.1:1/jwks' });
    expect(code).toBe(1);
    expect(stderr).toMatch(/^Cannot start: DATABASE_URL "postgres:\/\/jwks:\*\*\*@127\.0\.0\.1:1\/jwks" cannot be used: cannot connect to the PostgreSQL database .+: connect ECONNREFUSED .+\n$/);
    expect(stderr).not.toContain('s3cret');
  });

  it.runIf(onSqlite)('for a database file it cannot open', async () => {
    const databasePath = join(temporaryDirectory(), 'missing', 'keys.db');
    const { code, stderr } = await failedStart({ PORT: '0', DATABASE_URL: databasePath });
    expect(code).toBe(1);
    expect(stderr).toMatch(new RegExp(`^Cannot start: DATABASE_URL "${databasePath}" cannot be used: cannot open .+\n$`));
  });

  it('for a port already in use', async () => {
    const occupier = createServer();
    occupier.listen(0, '127.0.0.1');
    await once(occupier, 'listening');
    onTestFinished(() => {
      occupier.close();
    });
    const { port } = occupier.address() as AddressInfo;
    const { code, stderr } = await failedStart({ PORT: String(port), DATABASE_URL: ':memory:' });
    expect(code).toBe(1);
    expect(stderr).toBe(`Cannot start: PORT ${String(port)} is already in use on 127.0.0.1\n`);
  });

  it('for a NOT_MY_KEY that is not the one the keys were encrypted with', async () => {
    const databasePath = await newTestDatabase();
    const first = await startServer({ DATABASE_URL: databasePath, NOT_MY_KEY: 'the first secret' });
    expect(await first.stop()).toBe(0);
    const { code, stderr } = await failedStart({ PORT: '0', DATABASE_URL: databasePath, NOT_MY_KEY: 'another secret' });
    expect(code).toBe(1);
    expect(stderr).toBe('Cannot start: NOT_MY_KEY is not the secret the private keys in this database were encrypted with\n');
  });

  it('for a host that is not this machine', async () => {
    // 198.51.100.0/24 is TEST-NET-2 (RFC 5737): never an address of this machine.
    const { code, stderr } = await failedStart({ HOST: '198.51.100.7', PORT: '0', DATABASE_URL: ':memory:' });
    expect(code).toBe(1);
    expect(stderr).toBe('Cannot start: HOST "198.51.100.7" is not an address this machine can listen on\n');
  });
});
