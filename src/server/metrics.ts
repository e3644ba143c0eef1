/**
 * The service's Prometheus metrics, in a registry of its own: several apps in one process (a host
 * app and this plugin, or a test suite) never collide in prom-client's global registry.
 */
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { KeyRole, KeyStateCount } from '../keys/key-store.js';

/** Why a request was refused a token or a profile; a short, fixed list, so label values stay few. */
export type AuthFailureReason = 'credentials_required' | 'wrong_credentials' | 'wrong_client_credentials' | 'token_missing' | 'token_invalid' | 'token_revoked' | 'not_a_registered_user';

/** The `route` label of a request no route matched (an unknown path). */
export const UNMATCHED_ROUTE = 'unmatched';

export interface ServiceMetrics {
  /** Every metric of the service; serve `registry.metrics()` with `registry.contentType`. */
  readonly registry: Registry;
  /** Whether requests are timed and counted (off: every method here does nothing). */
  readonly enabled: boolean;
  /** One answered request; `route` is the route's pattern (`/.well-known/:kid.json`), never the raw path. */
  observeRequest(method: string, route: string, statusCode: number, seconds: number): void;
  tokenIssued(alg: string, expired: boolean): void;
  authFailed(route: string, reason: AuthFailureReason): void;
  rateLimited(route: string): void;
  /** The key that signs new tokens of `alg` changed, as this process saw it: a rotation, scheduled or not. */
  signingKeyChanged(alg: string): void;
  keyCreated(alg: string, role: KeyRole): void;
}

export interface ServiceMetricsOptions {
  /** Counts the stored keys by state when metrics are scraped. */
  countKeys: () => Promise<KeyStateCount[]>;
  /** Told when counting keys failed; the scrape then goes on without the key gauge. */
  onCountKeysError: (error: unknown) => void;
  /**
   * Node.js process metrics too (CPU, memory, event loop lag, GC): once per process, as they
   * install process-wide observers. The standalone server turns them on.
   */
  processMetrics?: boolean;
}

// From a JWKS served from memory (about a millisecond) to a registration hashing with argon2 (tens of ms).
const LATENCY_BUCKETS_SECONDS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];

export function createServiceMetrics({ countKeys, onCountKeysError, processMetrics = false }: ServiceMetricsOptions): ServiceMetrics {
  const registry = new Registry();
  if (processMetrics) collectDefaultMetrics({ register: registry });
  const requests = new Counter({
    name: 'http_requests_total',
    help: 'HTTP requests answered, by method, route pattern and status code.',
    labelNames: ['method', 'route', 'status_code'],
    registers: [registry],
  });
  const durations = new Histogram({
    name: 'http_request_duration_seconds',
    help: 'Time from receiving a request to sending its response, by method, route pattern and status code.',
    labelNames: ['method', 'route', 'status_code'],
    buckets: LATENCY_BUCKETS_SECONDS,
    registers: [registry],
  });
  const tokens = new Counter({ name: 'jwks_tokens_issued_total', help: 'Tokens signed, by algorithm and whether they were expired on purpose.', labelNames: ['alg', 'expired'], registers: [registry] });
  const authFailures = new Counter({ name: 'jwks_auth_failures_total', help: 'Requests refused with 401, by route and reason.', labelNames: ['route', 'reason'], registers: [registry] });
  const rateLimited = new Counter({ name: 'jwks_rate_limit_rejections_total', help: 'Requests refused with 429 by the rate limit, by route.', labelNames: ['route'], registers: [registry] });
  const rotations = new Counter({ name: 'jwks_key_rotations_total', help: 'Times the key signing new tokens changed, by algorithm, as this process saw it.', labelNames: ['alg'], registers: [registry] });
  const created = new Counter({ name: 'jwks_keys_created_total', help: 'Keys this process generated, by algorithm and role.', labelNames: ['alg', 'role'], registers: [registry] });
  new Gauge({
    name: 'jwks_keys',
    help: 'Stored keys by algorithm and state (published, active, retired, expired, revoked) when scraped.',
    labelNames: ['alg', 'state'],
    registers: [registry],
    // With several workers, each counts the same database: the aggregate is any one's count, not the sum.
    aggregator: 'max',
    async collect() {
      this.reset();
      try {
        for (const { alg, state, count } of await countKeys()) this.set({ alg, state }, count);
      } catch (error) {
        onCountKeysError(error);
      }
    },
  });

  // prom-client hashes the label values on every call; the children are looked up once per combination.
  const requestSeries = new Map<string, { counter: Counter.Internal; histogram: Histogram.Internal<string> }>();
  return {
    registry,
    enabled: true,
    observeRequest(method, route, statusCode, seconds) {
      const status = String(statusCode);
      const series = `${method} ${route} ${status}`;
      let children = requestSeries.get(series);
      if (children === undefined) {
        children = { counter: requests.labels(method, route, status), histogram: durations.labels(method, route, status) };
        requestSeries.set(series, children);
      }
      children.counter.inc();
      children.histogram.observe(seconds);
    },
    tokenIssued(alg, expired) {
      tokens.inc({ alg, expired: String(expired) });
    },
    authFailed(route, reason) {
      authFailures.inc({ route, reason });
    },
    rateLimited(route) {
      rateLimited.inc({ route });
    },
    signingKeyChanged(alg) {
      rotations.inc({ alg });
    },
    keyCreated(alg, role) {
      created.inc({ alg, role });
    },
  };
}

/** Metrics turned off: nothing is recorded, and the registry stays empty. */
export function disabledServiceMetrics(): ServiceMetrics {
  const ignore = () => undefined;
  return {
    registry: new Registry(),
    enabled: false,
    observeRequest: ignore,
    tokenIssued: ignore,
    authFailed: ignore,
    rateLimited: ignore,
    signingKeyChanged: ignore,
    keyCreated: ignore,
  };
}
