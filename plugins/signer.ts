/** Decorates the instance with the token signer and the verifier of the tokens it issues. */
import fp from 'fastify-plugin';
import type { Clock } from '../src/common/clock.js';
import { createSigner, type Signer } from '../src/tokens/signer.js';
import { createTokenVerifier, type TokenVerifier } from '../src/tokens/token-verifier.js';

declare module 'fastify' {
  interface FastifyInstance {
    signer: Signer;
    tokenVerifier: TokenVerifier;
  }
}

export interface SignerPluginOptions {
  issuer: string;
  audience?: string | undefined;
  tokenTtlSeconds: number;
  clock: Clock;
}

export default fp<SignerPluginOptions>(
  (app, { issuer, audience, tokenTtlSeconds, clock }, done) => {
    app.decorate('signer', createSigner({ keyring: app.keyring, issuer, audience, tokenTtlSeconds, clock }));
    app.decorate('tokenVerifier', createTokenVerifier({ keyring: app.keyring, issuer, audience, clock }));
    done();
  },
  { name: 'jwks-signer', fastify: '5.x', dependencies: ['jwks-keyring'] },
);
