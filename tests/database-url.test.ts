import { describe, expect, it } from 'vitest';
import { describeDatabaseLocation, parseDatabaseUrl } from '../src/database/location.js';

describe('parseDatabaseUrl', () => {
  it.each([
    ['keys.db', { dialect: 'sqlite', path: 'keys.db' }],
    ['/var/lib/jwks/keys.db', { dialect: 'sqlite', path: '/var/lib/jwks/keys.db' }],
    [':memory:', { dialect: 'sqlite', path: ':memory:' }],
    ['C:\\jwks\\keys.db', { dialect: 'sqlite', path: 'C:\\jwks\\keys.db' }],
    ['sqlite:keys.db', { dialect: 'sqlite', path: 'keys.db' }],
    ['sqlite://keys.db', { dialect: 'sqlite', path: 'keys.db' }],
    ['sqlite:///var/lib/jwks/keys.db', { dialect: 'sqlite', path: '/var/lib/jwks/keys.db' }],
    ['sqlite::memory:', { dialect: 'sqlite', path: ':memory:' }],
    [' postgres://jwks@db.internal/jwks ', { dialect: 'postgres', url: 'postgres://jwks@db.internal/jwks' }],
    ['postgresql://jwks@db.internal:6432/jwks?sslmode=require', { dialect: 'postgres', url: 'postgresql://jwks@db.internal:6432/jwks?sslmode=require' }],
  ])('reads %s', (url, location) => {
    expect(parseDatabaseUrl(url)).toEqual(location);
  });

  it.each(['', 'sqlite:', 'mysql://db.internal/keys', 'postgres://db.internal:port/keys'])('refuses %j', (url) => {
    expect(() => parseDatabaseUrl(url)).toThrow(expect.objectContaining({ name: 'DatabaseUrlError' }));
  });
});

describe('describeDatabaseLocation', () => {
  it('never shows a password', () => {
    const described = describeDatabaseLocation(parseDatabaseUrl('postgres://jwks:s3cret@db.internal/jwks?password=s3cret&sslmode=require'));
    expect(described).not.toContain('s3cret');
    expect(described).toBe('postgres://jwks:***@db.internal/jwks?password=***&sslmode=require');
    expect(describeDatabaseLocation(parseDatabaseUrl('keys.db'))).toBe('keys.db');
    expect(describeDatabaseLocation(parseDatabaseUrl('postgres://jwks@db.internal/jwks'))).toBe('postgres://jwks@db.internal/jwks');
  });
});
