import Fastify from 'fastify';
import { describe, expect, it, onTestFinished } from 'vitest';
import { sendSafeError } from '../routes/http.js';

async function appThrowing(error: Error) {
  const app = Fastify();
  onTestFinished(async () => {
    await app.close();
  });
  app.setErrorHandler(sendSafeError);
  app.get('/fails', () => {
    throw error;
  });
  return app.inject({ method: 'GET', url: '/fails' });
}

describe('sendSafeError', () => {
  it('passes a client error on with its message', async () => {
    const response = await appThrowing(Object.assign(new Error('That kid is not a number'), { statusCode: 422 }));
    expect(response.statusCode).toBe(422);
    expect(response.json()).toEqual({ statusCode: 422, error: 'Unprocessable Entity', message: 'That kid is not a number' });
  });

  it('hides what a server error says, whatever status it asked for', async () => {
    const secret = '-----BEGIN RSA PRIVATE KEY-----\nMIIEow...';
    for (const [statusCode, expected] of [[undefined, 500], [302, 500], [503, 503]] as const) {
      const response = await appThrowing(Object.assign(new Error(`failed near ${secret}`), { statusCode }));
      expect(response.statusCode).toBe(expected);
      expect(response.body).not.toContain('BEGIN');
      expect(response.json<{ message: string }>().message).toBe(expected === 500 ? 'Internal Server Error' : 'Service Unavailable');
    }
  });
});
