/**
 * Decorates the instance with the keyring, loaded (and the keys it needs generated) before the
 * server is ready, and runs its scheduler once it is: an unref'd timer, so it never keeps a
 * process alive.
 */
import fp from 'fastify-plugin';
import type { AlgorithmList } from '../src/keys/algorithms.js';
import type { Clock } from '../src/common/clock.js';
import type { RotationPolicy } from '../src/keys/key-lifecycle.js';
import { createKeyring, type Keyring } from '../src/keys/keyring.js';
import { dialectOf } from '../src/database/dialect.js';

declare module 'fastify' {
  interface FastifyInstance {
    keyring: Keyring;
  }
}

// What the log of a database outage calls the scheduler's steps.
const KEY_SYNC = 'key sync';

export interface KeyringPluginOptions {
  algorithms: AlgorithmList;
  policy: RotationPolicy;
  expiredKeyRetentionSeconds: number;
  /** How often the scheduler looks for changes by other processes and for due rotations. */
  syncIntervalMs: number;
  clock: Clock;
}

export default fp<KeyringPluginOptions>(
  (app, { algorithms, policy, expiredKeyRetentionSeconds, syncIntervalMs, clock }, done) => {
    const keyring = createKeyring({
      keyStore: app.keyStore,
      algorithms,
      policy,
      expiredKeyRetentionSeconds,
      clock,
      onMaintenance: (report) => {
        app.log.info(report, 'maintained keys');
        for (const { alg, role } of report.created) app.metrics.keyCreated(alg, role);
      },
      onSigningKeyChange: (algorithm, kid) => {
        app.log.info({ alg: algorithm, kid }, 'signing key changed');
        app.metrics.signingKeyChanged(algorithm);
      },
      onPruned: (kids) => {
        app.log.info({ kids }, 'pruned keys');
      },
    });
    app.decorate('keyring', keyring);

    // A step mostly reads. On SQLite, reads go on through every outage (a WAL reader needs no lock
    // and no space), so one that succeeds shows nothing; on PostgreSQL it shows the server back.
    const syncShowsRecovery = dialectOf(app.database) === 'postgres';
    let step: Promise<void> | undefined;
    const runStep = (): void => {
      // A step that generates keys can outlast the interval; the next one waits its turn.
      step ??= keyring
        .sync()
        .then(
          () => {
            if (syncShowsRecovery) app.databaseOutage.succeeded(KEY_SYNC);
          },
          (error: unknown) => {
            // Once per outage, not once a second, when the database is what failed.
            if (!app.databaseOutage.failedIfUnavailable(error, KEY_SYNC)) app.log.error({ err: error }, 'key maintenance failed; retrying at the next step');
          },
        )
        .finally(() => {
          step = undefined;
        });
    };
    let timer: NodeJS.Timeout | undefined;

    // Loading generates the keys a new database needs, on libuv's thread pool: the plugins and
    // routes registered after this one are set up meanwhile, and the app is ready once it is done.
    const loaded = keyring.current();
    // Awaited by the hooks below: a failure stops the start, it is no unhandled rejection.
    loaded.catch(() => undefined);
    app.addHook('onReady', async () => {
      const { jwks } = await loaded;
      app.log.info({ publishedKids: jwks.keys.map((jwk) => jwk.kid), algorithms }, 'keyring loaded');
      timer = setInterval(runStep, syncIntervalMs).unref();
    });
    app.addHook('onClose', async () => {
      clearInterval(timer);
      // The database closes after this plugin; a load or step still running must not find it gone.
      await loaded.catch(() => undefined);
      await step;
    });
    done();
  },
  { name: 'jwks-keyring', fastify: '5.x', dependencies: ['jwks-key-store', 'jwks-metrics'] },
);
