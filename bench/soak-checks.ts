/** The soak's checks of each answer: a success, a 429 from the limiter or a failure, counted per endpoint and phase. */
import { createHistogram, type RecordableHistogram } from 'node:perf_hooks';
import { REQUEST_TIMEOUT_MS, type Answer, type Outgoing } from './soak-requests.js';
import { RATE_LIMITED, type Endpoint } from './soak-traffic.js';

/** What each endpoint answers when it does its job. */
const SUCCESS_STATUS: Record<Endpoint, number> = { 'GET /.well-known/jwks.json': 200, 'GET /.well-known/{kid}.json': 200, 'POST /auth': 200, 'POST /register': 201 };

export function failureOf(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  if (error.name === 'AbortError') return `time-out (${String(REQUEST_TIMEOUT_MS / 1000)} s)`;
  return (error as NodeJS.ErrnoException).code ?? error.message;
}

export interface EndpointStats {
  requests: number;
  statuses: Map<number, number>;
  limited: number;
  /** 429s to the clients that keep under the limit: the limiter counting them together with another, or a stall bunching their requests. */
  limitedWellBehaved: number;
  /** Each kind of failure (`status 500`, `ECONNRESET`, `time-out`, a wrong body) and how often. */
  failures: Map<string, number>;
  /** Microseconds from sending to the whole answer, of the answers that did the endpoint's job. */
  latency: RecordableHistogram;
}

export interface PhaseStats {
  endpoints: Record<Endpoint, EndpointStats>;
  /** Requests due while BACKLOG_SECONDS of load were in flight, never sent. */
  unsent: number;
}

export function phaseStats(): PhaseStats {
  const endpoint = (): EndpointStats => ({ requests: 0, statuses: new Map(), limited: 0, limitedWellBehaved: 0, failures: new Map(), latency: createHistogram() });
  return {
    endpoints: { 'GET /.well-known/jwks.json': endpoint(), 'GET /.well-known/{kid}.json': endpoint(), 'POST /auth': endpoint(), 'POST /register': endpoint() },
    unsent: 0,
  };
}

export function countUp<K>(counts: Map<K, number>, key: K): void {
  counts.set(key, (counts.get(key) ?? 0) + 1);
}

export function recordAnswer(stats: EndpointStats, endpoint: Endpoint, request: Outgoing, { status, body }: Answer, from: { greedy: boolean; microseconds: number }): void {
  countUp(stats.statuses, status);
  if (status === 429 && RATE_LIMITED.has(endpoint)) {
    stats.limited += 1;
    if (!from.greedy) stats.limitedWellBehaved += 1;
    return;
  }
  if (status !== SUCCESS_STATUS[endpoint]) {
    countUp(stats.failures, `status ${String(status)}`);
    return;
  }
  const problem = request.check(body);
  if (problem !== undefined) countUp(stats.failures, problem);
  else stats.latency.record(Math.max(1, Math.round(from.microseconds)));
}
