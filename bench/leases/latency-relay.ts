/**
 * A TCP relay between a data plane and the control plane that adds a fixed one-way latency:
 * every chunk, in both directions, is held `delayMs` before it is written on (order kept), so
 * a round trip costs 2 x delayMs more. With delayMs 0 chunks pass at once. Every chunk sent
 * upstream (data plane → control plane) is also fed to an HTTP/2 tap that counts frames and
 * gRPC messages (see h2-upstream-tap.ts).
 */
import { connect, createServer, type Server, type Socket } from 'node:net';

import { addCounts, emptyCounts, H2UpstreamTap, type UpstreamCounts } from './h2-upstream-tap.js';

export interface LatencyRelay {
  readonly address: string;
  readonly delayMs: number;
  /** Sum over every connection this relay has carried (reconnects included). */
  upstreamCounts(): UpstreamCounts;
  /** Connections accepted so far. */
  connections(): number;
  stop(): Promise<void>;
}

/** Chunks waiting in one direction longer than this mean the relay is not keeping up: fail loudly. */
const MAX_QUEUED_CHUNKS = 100_000;

export async function startLatencyRelay(target: string, delayMs: number): Promise<LatencyRelay> {
  const [host = '127.0.0.1', port = '0'] = target.split(':');
  const sockets = new Set<Socket>();
  const taps: H2UpstreamTap[] = [];
  const timers = new Set<NodeJS.Timeout>();
  let accepted = 0;

  /** Writes what `from` sends to `to`, each chunk `delayMs` after it arrived. */
  const delayedPipe = (from: Socket, to: Socket, onChunk?: (chunk: Buffer) => void) => {
    const queue: { due: number; chunk: Buffer }[] = [];
    let timer: NodeJS.Timeout | null = null;
    const drain = () => {
      if (timer !== null) timers.delete(timer);
      timer = null;
      const now = performance.now();
      while (queue.length > 0 && queue[0]!.due <= now) {
        const { chunk } = queue.shift()!;
        if (!to.destroyed) to.write(chunk);
      }
      if (queue.length > 0) {
        timer = setTimeout(drain, Math.max(0, queue[0]!.due - now));
        timers.add(timer);
      }
    };
    from.on('data', (chunk: Buffer) => {
      onChunk?.(chunk);
      if (delayMs <= 0) {
        to.write(chunk);
        return;
      }
      if (queue.length >= MAX_QUEUED_CHUNKS) {
        from.destroy(new Error(`latency relay: more than ${MAX_QUEUED_CHUNKS} chunks queued`));
        return;
      }
      queue.push({ due: performance.now() + delayMs, chunk });
      if (timer === null) {
        timer = setTimeout(drain, delayMs);
        timers.add(timer);
      }
    });
    return () => {
      if (timer !== null) {
        clearTimeout(timer);
        timers.delete(timer);
      }
      timer = null;
      queue.length = 0;
    };
  };

  const server: Server = createServer((client) => {
    accepted++;
    const upstream = connect(Number(port), host);
    client.setNoDelay(true);
    upstream.setNoDelay(true);
    sockets.add(client);
    sockets.add(upstream);
    const tap = new H2UpstreamTap();
    taps.push(tap);
    const stopUp = delayedPipe(client, upstream, (chunk) => tap.feed(chunk));
    const stopDown = delayedPipe(upstream, client);
    let closed = false;
    const close = () => {
      if (closed) return;
      closed = true;
      stopUp();
      stopDown();
      client.destroy();
      upstream.destroy();
      sockets.delete(client);
      sockets.delete(upstream);
    };
    client.on('error', close).on('close', close).on('end', close);
    upstream.on('error', close).on('close', close).on('end', close);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const address = server.address();
  const relayPort = typeof address === 'object' && address !== null ? address.port : 0;
  return {
    address: `127.0.0.1:${relayPort}`,
    delayMs,
    upstreamCounts: () => taps.reduce((sum, tap) => addCounts(sum, tap.counts), emptyCounts()),
    connections: () => accepted,
    stop: () =>
      new Promise<void>((resolve) => {
        for (const timer of timers) clearTimeout(timer);
        timers.clear();
        for (const socket of sockets) socket.destroy();
        sockets.clear();
        server.close(() => resolve());
      }),
  };
}
