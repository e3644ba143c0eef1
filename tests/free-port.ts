/** A free loopback port, for a server that must be told its port before it starts. */
import { once } from 'node:events';
import net from 'node:net';

/** A port nothing listens on now (another process may still take it before the caller does). */
export async function freePort(): Promise<number> {
  const probe = net.createServer().listen(0, '127.0.0.1');
  await once(probe, 'listening');
  const { port } = probe.address() as net.AddressInfo;
  probe.close();
  return port;
}
