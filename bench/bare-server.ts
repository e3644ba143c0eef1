/**
 * The baselines of our routes: bare Fastify, in a process of its own, with no plugin, hook, header,
 * log line or database write of ours. ROUTES maps each GET path to the file holding its body
 * (JSON), sent as it is: the key endpoints' bytes, serialized in advance. TOKENS, when given, names
 * a file of {@link TokenTemplate}s by algorithm: `POST /auth?alg=` signs that token afresh through
 * jose, as our route does for a request without a body. Listens on PORT.
 */
import { readFileSync } from 'node:fs';
import Fastify from 'fastify';
import { importPKCS8, SignJWT, type CompactJWSHeaderParameters, type JWTPayload } from 'jose';

/** A token our `POST /auth` issued, and the private key that signed it. */
export interface TokenTemplate {
  header: CompactJWSHeaderParameters;
  /** Every claim but `iat` and `exp`, which are set afresh for each token. */
  claims: JWTPayload;
  /** `exp` minus `iat`. */
  lifetimeSeconds: number;
  privateKeyPkcs8: string;
}

async function tokenSigner({ header, claims, lifetimeSeconds, privateKeyPkcs8 }: TokenTemplate): Promise<() => Promise<string>> {
  const privateKey = await importPKCS8(privateKeyPkcs8, header.alg);
  return () => {
    const now = Math.floor(Date.now() / 1000);
    return new SignJWT(claims).setProtectedHeader(header).setIssuedAt(now).setExpirationTime(now + lifetimeSeconds).sign(privateKey);
  };
}

const app = Fastify({ logger: false });
const routes = JSON.parse(process.env.ROUTES ?? '{}') as Record<string, string>;
for (const [path, file] of Object.entries(routes)) {
  const body = readFileSync(file, 'utf8');
  app.get(path, (_request, reply) => reply.type('application/json; charset=utf-8').send(body));
}
if (process.env.TOKENS !== undefined) {
  const templates = JSON.parse(readFileSync(process.env.TOKENS, 'utf8')) as Record<string, TokenTemplate>;
  const signers = new Map(await Promise.all(Object.entries(templates).map(async ([algorithm, template]) => [algorithm, await tokenSigner(template)] as const)));
  app.post<{ Querystring: { alg?: string } }>('/auth', async (request, reply) => {
    const sign = signers.get(request.query.alg ?? '');
    if (sign === undefined) return reply.code(400).send({ error: `no token of alg ${String(request.query.alg)}` });
    return { token: await sign() };
  });
}
await app.listen({ host: '127.0.0.1', port: Number(process.env.PORT) });
