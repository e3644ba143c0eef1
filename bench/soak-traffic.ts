/** The soak's traffic mix: its endpoints, each one's share of the rate, and the clients that send it, under and over the rate limit. */
import { Agent } from 'node:http';

export const ENDPOINTS = ['GET /.well-known/jwks.json', 'GET /.well-known/{kid}.json', 'POST /auth', 'POST /register'] as const;
export type Endpoint = (typeof ENDPOINTS)[number];

/** The routes the server limits, by default to 10 requests a second per client IP: a 429 from them is the limiter working. */
export const RATE_LIMITED: ReadonlySet<Endpoint> = new Set<Endpoint>(['POST /auth', 'POST /register']);
/**
 * Shares of the offered rate: verifiers fetching keys, clients getting tokens, now and then a new
 * user. Password hashes and checks (argon2, 11 ms of a core each) are what costs the server most.
 */
export const MIX: Record<Endpoint, number> = { 'GET /.well-known/jwks.json': 0.6, 'GET /.well-known/{kid}.json': 0.2, 'POST /auth': 0.195, 'POST /register': 0.005 };
/** One client asks for more than the limit allows, so that the limiter has work: 10 of its 30 token requests a second pass, and 10 of its 12 registrations. */
export const GREEDY_CLIENT = '127.0.0.2';
export const GREEDY_PER_SECOND: Partial<Record<Endpoint, number>> = { 'POST /auth': 30, 'POST /register': 12 };
/**
 * Every other client makes at most 4 requests a second on each rate-limited route, well under the
 * limit, evenly spaced: any 429 they get says the generator or the server fell behind.
 */
const WELL_BEHAVED_PER_SECOND = 4;
const FIRST_WELL_BEHAVED = 10;
const LAST_LOOPBACK = 254;

export interface Stream {
  endpoint: Endpoint;
  perSecond: number;
  /** The client addresses it sends from, in turn. */
  addresses: readonly string[];
  /** Connections of its own, so that slow password checks never hold key fetches up in the generator. */
  agent: Agent;
  scheduled: number;
}

const keepAliveAgent = () => new Agent({ keepAlive: true, maxSockets: 32 });

export function loadStreams(perSecond: number): { streams: Stream[]; wellBehavedClients: number } {
  const limitedPerSecond = Math.max(...ENDPOINTS.filter((endpoint) => RATE_LIMITED.has(endpoint)).map((endpoint) => MIX[endpoint] * perSecond));
  const wellBehavedClients = Math.min(LAST_LOOPBACK - FIRST_WELL_BEHAVED + 1, Math.max(8, Math.ceil(limitedPerSecond / WELL_BEHAVED_PER_SECOND)));
  const addresses = Array.from({ length: wellBehavedClients }, (_, index) => `127.0.0.${String(FIRST_WELL_BEHAVED + index)}`);
  const streams: Stream[] = ENDPOINTS.map((endpoint) => ({ endpoint, perSecond: MIX[endpoint] * perSecond, addresses, agent: keepAliveAgent(), scheduled: 0 }));
  for (const [endpoint, greedyPerSecond] of Object.entries(GREEDY_PER_SECOND) as [Endpoint, number][]) {
    streams.push({ endpoint, perSecond: greedyPerSecond, addresses: [GREEDY_CLIENT], agent: keepAliveAgent(), scheduled: 0 });
  }
  return { streams, wellBehavedClients };
}
