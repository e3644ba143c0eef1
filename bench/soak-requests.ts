/** The soak's requests: what each endpoint is sent, how the body of its answer is checked, and the sending. */
import { request, type Agent } from 'node:http';
import type { Endpoint } from './soak-traffic.js';

export const REQUEST_TIMEOUT_MS = 10_000;
/** The latest registered users, whose passwords `POST /auth` goes on using. */
const KEPT_CREDENTIALS = 1000;

interface Credentials {
  username: string;
  password: string;
}

/** What the load has learnt from the server's answers: the kids it publishes, the users it registered. */
export interface LoadState {
  runId: string;
  kids: string[];
  credentials: Credentials[];
  registrations: number;
}

export interface Outgoing {
  method: 'GET' | 'POST';
  path: string;
  body?: string;
  /** Why a success answer's body is not what the endpoint sends, if it is not. */
  check(body: string): string | undefined;
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

export function publishedKids(body: string): string[] | undefined {
  const document = parseJson(body);
  if (!isRecord(document) || !Array.isArray(document.keys) || document.keys.length === 0) return undefined;
  const kids = document.keys.map((key: unknown) => (isRecord(key) && typeof key.kid === 'string' ? key.kid : undefined));
  return kids.every((kid) => kid !== undefined) ? kids : undefined;
}

function tokenClaims(body: string): Record<string, unknown> | undefined {
  const reply = parseJson(body);
  if (!isRecord(reply) || typeof reply.token !== 'string') return undefined;
  const [, payload] = reply.token.split('.');
  const claims = parseJson(Buffer.from(payload ?? '', 'base64url').toString('utf8'));
  return isRecord(claims) ? claims : undefined;
}

function jwksRequest(state: LoadState): Outgoing {
  return {
    method: 'GET',
    path: '/.well-known/jwks.json',
    check: (body) => {
      const kids = publishedKids(body);
      if (kids === undefined) return 'not a JWKS';
      // Keys rotate: the next per-kid requests ask for what is published now.
      state.kids = kids;
      return undefined;
    },
  };
}

function kidRequest(state: LoadState, sequence: number): Outgoing {
  const kid = state.kids[sequence % state.kids.length] ?? '';
  return {
    method: 'GET',
    path: `/.well-known/${encodeURIComponent(kid)}.json`,
    check: (body) => (publishedKids(body)?.join() === kid ? undefined : `not the JWKS of kid ${kid}`),
  };
}

/** One token in ten from an expired key; one in twenty for a registered user with the password, checked with argon2; the rest for names nobody registered. */
function authRequest(state: LoadState, sequence: number): Outgoing {
  const expired = sequence % 10 === 0;
  const user = sequence % 20 === 5 ? state.credentials[Math.floor(sequence / 20) % state.credentials.length] : undefined;
  const credentials = user ?? { username: `visitor_${String(sequence % 5000)}`, password: 'not-registered' };
  return {
    method: 'POST',
    path: expired ? '/auth?expired=true' : '/auth',
    body: JSON.stringify(credentials),
    check: (body) => {
      const claims = tokenClaims(body);
      if (claims === undefined || typeof claims.exp !== 'number') return 'not a token';
      if (claims.sub !== credentials.username) return 'a token for another subject';
      if (expired !== claims.exp * 1000 < Date.now()) return expired ? 'an unexpired token for ?expired=true' : 'an expired token';
      const passwordChecked = Array.isArray(claims.amr) && claims.amr.includes('pwd');
      return passwordChecked === (user !== undefined) ? undefined : 'a token whose amr does not say whether the password was checked';
    },
  };
}

function registerRequest(state: LoadState): Outgoing {
  state.registrations += 1;
  const username = `soak_${state.runId}_${String(state.registrations)}`;
  return {
    method: 'POST',
    path: '/register',
    body: JSON.stringify({ username, email: `${username}@soak.test` }),
    check: (body) => {
      const reply = parseJson(body);
      if (!isRecord(reply) || typeof reply.password !== 'string') return 'no password';
      state.credentials.push({ username, password: reply.password });
      if (state.credentials.length > KEPT_CREDENTIALS) state.credentials.shift();
      return undefined;
    },
  };
}

export function outgoing(endpoint: Endpoint, state: LoadState, sequence: number): Outgoing {
  switch (endpoint) {
    case 'GET /.well-known/jwks.json':
      return jwksRequest(state);
    case 'GET /.well-known/{kid}.json':
      return kidRequest(state, sequence);
    case 'POST /auth':
      return authRequest(state, sequence);
    case 'POST /register':
      return registerRequest(state);
  }
}

export interface Answer {
  status: number;
  body: string;
}

/** One request over the keep-alive `agent`, from `localAddress`: the client IP the server sees and rate-limits. */
export function exchange(agent: Agent, port: number, localAddress: string, { method, path, body }: Outgoing): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const headers = body === undefined ? {} : { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) };
    const sent = request({ host: '127.0.0.1', port, method, path, headers, agent, localAddress, signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) }, (response) => {
      const chunks: Buffer[] = [];
      response.on('data', (chunk: Buffer) => chunks.push(chunk));
      response.on('end', () => {
        resolve({ status: response.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') });
      });
      response.on('error', reject);
    });
    sent.on('error', reject);
    sent.end(body);
  });
}
