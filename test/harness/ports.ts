// Free loopback ports for test servers.
//
// A port from freePort() is only *probably* free: another process (a parallel test file,
// or any outgoing connection taking an ephemeral port) can grab it before our server binds.
// The server starters therefore retry with a new port when the bind fails.
import net from 'node:net';

// Ports already handed out by this process. The kernel may hand the same ephemeral port
// out again right after we close it; never give one port to two servers of one process.
const handedOut = new Set<number>();

function bindZero(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.once('error', reject);
    srv.listen({ host: '127.0.0.1', port: 0, exclusive: true }, () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr !== null ? addr.port : 0;
      srv.close(() => (port > 0 ? resolve(port) : reject(new Error('freePort: no port from the kernel'))));
    });
  });
}

// Test hook: ports freePort() returns before asking the kernel (to provoke bind failures).
const forced: number[] = [];

/** For the harness's own tests: make the next freePort() calls return these ports, in order. */
export function forceNextPorts(...ports: number[]): void {
  forced.push(...ports);
}

/** Binds 127.0.0.1:0, reads the port the kernel chose, closes it and returns the port. */
export async function freePort(): Promise<number> {
  const f = forced.shift();
  if (f !== undefined) return f;
  for (let i = 0; i < 50; i++) {
    const port = await bindZero();
    if (!handedOut.has(port)) {
      handedOut.add(port);
      return port;
    }
  }
  throw new Error('freePort: the kernel keeps returning ports this process already uses');
}
