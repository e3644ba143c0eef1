/** The soak's load: offered at a steady rate through the warm-up and the measured phase, with the server's CPU, memory and database size. */
import { statSync } from 'node:fs';
import { setTimeout as delay } from 'node:timers/promises';
import { ownCpuSeconds, processCpuSeconds, type RunningProcess } from './server-process.js';
import { countUp, failureOf, phaseStats, recordAnswer, type PhaseStats } from './soak-checks.js';
import { watchRss, type RssSample } from './soak-memory.js';
import { exchange, outgoing, publishedKids, type LoadState } from './soak-requests.js';
import type { Settings } from './soak-settings.js';
import { GREEDY_CLIENT, loadStreams, type Stream } from './soak-traffic.js';

const TICK_MS = 10;
/** More than this many seconds of load in flight means the server has fallen far behind: further requests are counted as not sent rather than queued. */
const BACKLOG_SECONDS = 2;

export interface LoadRun {
  warmUp: PhaseStats;
  measured: PhaseStats;
  measuredSeconds: number;
  wellBehavedClients: number;
  maxInFlight: number;
  rss: { idle: RssSample; warmUpEnd: RssSample; end: RssSample; samples: RssSample[] };
  cores: { server: number; loadGenerator: number };
  databaseMb: { warmUpEnd: number; end: number };
}

function databaseMb(path: string): number {
  const bytes = ['', '-wal'].reduce((total, suffix) => {
    try {
      return total + statSync(`${path}${suffix}`).size;
    } catch {
      return total;
    }
  }, 0);
  return Number((bytes / 2 ** 20).toFixed(1));
}

/** Offers the load at a steady rate: each tick sends what is due since the start, whatever the answers' pace (no coordinated omission). */
export async function runLoad(server: RunningProcess, databasePath: string, settings: Settings): Promise<LoadRun> {
  const port = Number(new URL(server.baseUrl).port);
  const pid = server.child.pid;
  const jwks = await (await fetch(`${server.baseUrl}/.well-known/jwks.json`)).text();
  const state: LoadState = { runId: Date.now().toString(36), kids: publishedKids(jwks) ?? [], credentials: [], registrations: 0 };
  const { streams, wellBehavedClients } = loadStreams(settings.perSecond);
  const warmUp = phaseStats();
  const measured = phaseStats();
  let phase = warmUp;
  const inFlight = new Set<Promise<void>>();

  const send = (stream: Stream) => {
    const stats = phase.endpoints[stream.endpoint];
    const address = stream.addresses[stream.scheduled % stream.addresses.length] ?? GREEDY_CLIENT;
    const request = outgoing(stream.endpoint, state, stream.scheduled);
    const sentAt = performance.now();
    stats.requests += 1;
    const pending = exchange(stream.agent, port, address, request).then(
      (answer) => {
        recordAnswer(stats, stream.endpoint, request, answer, { greedy: address === GREEDY_CLIENT, microseconds: (performance.now() - sentAt) * 1000 });
      },
      (error: unknown) => {
        countUp(stats.failures, failureOf(error));
      },
    );
    inFlight.add(pending);
    void pending.finally(() => inFlight.delete(pending));
  };

  const startedAt = performance.now();
  const elapsedSeconds = () => (performance.now() - startedAt) / 1000;
  const rss = watchRss(pid, elapsedSeconds);
  // The phases end early, with the reason, should the server exit under the load.
  const serverGone = new AbortController();
  server.child.once('exit', (code, signal) => {
    serverGone.abort(new Error(`the server exited during the soak (code ${String(code)}, signal ${String(signal)})`));
  });
  const phaseEnd = (seconds: number) =>
    delay(seconds * 1000, undefined, { signal: serverGone.signal }).catch(() => {
      serverGone.signal.throwIfAborted();
    });
  const idle = rss.mark();
  const maxInFlight = Math.ceil(BACKLOG_SECONDS * streams.reduce((total, stream) => total + stream.perSecond, 0));
  const ticker = setInterval(() => {
    const elapsed = elapsedSeconds();
    for (const stream of streams) {
      for (let due = Math.floor(elapsed * stream.perSecond) - stream.scheduled; due > 0; due -= 1) {
        if (inFlight.size < maxInFlight) send(stream);
        else phase.unsent += 1;
        stream.scheduled += 1;
      }
    }
  }, TICK_MS);
  try {
    await phaseEnd(settings.warmUpSeconds);
    phase = measured;
    const warmUpEnd = rss.mark();
    const databaseWarmUpEnd = databaseMb(databasePath);
    const [serverCpu, ownCpu, measureStart] = [processCpuSeconds(pid), ownCpuSeconds(), performance.now()];
    await phaseEnd(settings.durationSeconds - settings.warmUpSeconds);
    clearInterval(ticker);
    const end = rss.mark();
    const samples = rss.stop();
    const measuredSeconds = (performance.now() - measureStart) / 1000;
    const cores = {
      server: Number(((processCpuSeconds(pid) - serverCpu) / measuredSeconds).toFixed(2)),
      loadGenerator: Number(((ownCpuSeconds() - ownCpu) / measuredSeconds).toFixed(2)),
    };
    await Promise.all(inFlight);
    return {
      warmUp,
      measured,
      measuredSeconds: Number(measuredSeconds.toFixed(1)),
      wellBehavedClients,
      maxInFlight,
      rss: { idle, warmUpEnd, end, samples },
      cores,
      databaseMb: { warmUpEnd: databaseWarmUpEnd, end: databaseMb(databasePath) },
    };
  } finally {
    clearInterval(ticker);
    rss.stop();
    for (const stream of streams) stream.agent.destroy();
  }
}
