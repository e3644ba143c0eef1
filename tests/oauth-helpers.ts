/** What the OAuth route tests share: an app with a registered client, and requests in the form encoding the endpoints take. */
import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import { createLocalJWKSet, jwtVerify, type JSONWebKeySet, type JWTPayload, type JWTVerifyOptions } from 'jose';
import { expect } from 'vitest';
import type { AppOptions } from '../src/app.js';
import type { ClientSettings } from '../src/oauth/clients.js';
import { basic, readyApp } from './helpers.js';

export const FORM = { 'content-type': 'application/x-www-form-urlencoded' } as const;

export interface RegisteredTestClient {
  clientId: string;
  secret: string;
  /** Its HTTP Basic header (client_secret_basic). */
  authorization: string;
}

export async function registerClient(app: FastifyInstance, clientId: string, settings: ClientSettings = {}): Promise<RegisteredTestClient> {
  const secret = await app.clientStore.add(clientId, settings);
  return { clientId, secret, authorization: basic(clientId, secret) };
}

/** The real app, rate limit off unless asked for, with one client `service` allowed the scopes `read write`. */
export async function oauthApp(options: Partial<AppOptions> = {}, settings: ClientSettings = { scopes: ['read', 'write'] }) {
  const app = await readyApp({ issuer: 'https://issuer.example', rateLimit: false, ...options });
  return { app, client: await registerClient(app, 'service', settings) };
}

export function postForm(app: FastifyInstance, url: string, form: Record<string, string>, authorization?: string): Promise<LightMyRequestResponse> {
  return app.inject({ method: 'POST', url, headers: { ...FORM, ...(authorization === undefined ? {} : { authorization }) }, payload: new URLSearchParams(form).toString() });
}

/** A `client_credentials` access token for the client, asserting it was issued. */
export async function accessToken(app: FastifyInstance, client: RegisteredTestClient, form: Record<string, string> = {}): Promise<string> {
  const response = await postForm(app, '/oauth/token', { grant_type: 'client_credentials', ...form }, client.authorization);
  expect(response.statusCode, response.body).toBe(200);
  return response.json<{ access_token: string }>().access_token;
}

/** Asserts an RFC 6749 §5.2 error answered with `statusCode`, never cached, and returns its description. */
export function expectOAuthError(response: LightMyRequestResponse, statusCode: number, error: string): string {
  expect(response.statusCode, response.body).toBe(statusCode);
  expect(response.headers['content-type']).toMatch(/^application\/json/);
  expect(response.headers['cache-control']).toBe('no-store');
  const body = response.json<Record<string, unknown>>();
  expect(Object.keys(body).sort()).toEqual(['error', 'error_description', 'message', 'statusCode']);
  expect(body).toMatchObject({ statusCode, error, message: body.error_description });
  expect(response.body).not.toMatch(/\bat .+:\d+:\d+|BEGIN|PRIVATE/);
  return String(body.error_description);
}

/** Verifies an access token against the JWKS the app serves, as a resource server would (RFC 9068 §4). */
export async function verifyAccessToken(app: FastifyInstance, token: string, options: JWTVerifyOptions = {}): Promise<JWTPayload> {
  const jwks = (await app.inject({ method: 'GET', url: '/.well-known/jwks.json' })).json<JSONWebKeySet>();
  const { payload, protectedHeader } = await jwtVerify(token, createLocalJWKSet(jwks), { typ: 'at+jwt', ...options });
  expect(protectedHeader.typ).toBe('at+jwt');
  return payload;
}
