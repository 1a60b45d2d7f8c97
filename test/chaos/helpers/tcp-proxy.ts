import { connect, createServer, type Server, type Socket } from 'node:net';

/**
 * A test-only TCP proxy in front of PostgreSQL on 127.0.0.1: Fen's pool
 * connects through it, so a test can cut every connection at a chosen moment
 * (`cut`: the database seems to vanish mid-query) and refuse new ones until it
 * is opened again (`close` and `open`), while the server itself, and the test's
 * own connections to it, carry on untouched.
 */
export interface TcpProxy {
  port: number;
  /** The same URL, through the proxy. */
  urlFor(databaseUrl: string): string;
  /** Ends every connection through the proxy at once. */
  cut(): void;
  /** Cuts every connection and stops listening: new connections are refused (ECONNREFUSED). */
  refuse(): Promise<void>;
  /** Listens again on the same port. */
  accept(): Promise<void>;
  close(): Promise<void>;
}

export async function startTcpProxy(target: { host: string; port: number }): Promise<TcpProxy> {
  const sockets = new Set<Socket>();
  const track = (socket: Socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    // A cut connection errors on both ends; the proxy itself must carry on.
    socket.on('error', () => socket.destroy());
  };
  const newServer = (): Server =>
    createServer((client) => {
      const upstream = connect(target.port, target.host);
      track(client);
      track(upstream);
      client.pipe(upstream);
      upstream.pipe(client);
      client.on('close', () => upstream.destroy());
      upstream.on('close', () => client.destroy());
    });
  const listen = (server: Server, port: number) =>
    new Promise<number>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => {
        const address = server.address();
        resolve(typeof address === 'object' && address ? address.port : port);
      });
    });
  let server: Server | undefined = newServer();
  const port = await listen(server, 0);
  const cut = () => {
    for (const socket of sockets) socket.destroy();
  };
  const stopListening = async () => {
    const current = server;
    server = undefined;
    cut();
    if (current) await new Promise<void>((resolve) => current.close(() => resolve()));
  };
  return {
    port,
    urlFor: (databaseUrl) => {
      const url = new URL(databaseUrl);
      url.hostname = '127.0.0.1';
      url.port = String(port);
      return url.toString();
    },
    cut,
    refuse: stopListening,
    accept: async () => {
      if (server) return;
      server = newServer();
      await listen(server, port);
    },
    close: stopListening,
  };
}
