/**
 * One data-plane proxy: an HTTP server running the proxy pipeline, a stream to the control
 * plane that keeps the policy cache current, and one undici pool per vendor upstream.
 * Stateless: it never talks to etcd or PostgreSQL.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';

import type { Logger } from '../core/logger.js';
import type { DataPlaneConfig } from './config.js';
import { ControlPlaneLink } from './control-plane-link.js';
import { PolicyCache } from './policy-cache.js';
import { createDataPlaneMetrics, type DataPlaneMetrics } from './metrics.js';
import { createProxyHandler } from './proxy.js';
import { PROXY_ERROR_STATUS, type ProxyErrorCode } from './proxy-error.js';
import { Upstreams } from './upstream.js';
import { LeaseBook } from './lease-book.js';
import { AuditShipper } from './audit-shipper.js';
import { AuditSpool } from './audit-spool.js';
import { SpendGate } from './spend-gate.js';
import { PricedIntents } from './priced-intents.js';
import { ReplayableCalls } from './replayable-calls.js';
import { UnkeyedRefusals } from './unkeyed-refusals.js';

export interface RunningDataPlane {
  readonly port: number;
  readonly cache: PolicyCache;
  readonly book: LeaseBook;
  stop(): Promise<void>;
}

const HEADERS_TIMEOUT_MS = 10_000;
const MAX_HEADER_BYTES = 16 * 1024;

export async function startDataPlane(config: DataPlaneConfig, logger: Logger): Promise<RunningDataPlane> {
  // Late-bound like the others below: lookups go out on the link.
  let sendLookup: (keyHashes: readonly string[]) => boolean = () => false;
  const cache = new PolicyCache({ sendLookup: (keyHashes) => sendLookup(keyHashes) });
  const pricedIntents = new PricedIntents();
  const upstreams = new Upstreams(config.upstreams, config.upstreamTimeoutMs);
  // Late-bound: the book needs the link's incarnation, the link needs the gate's callbacks.
  let book: LeaseBook | null = null;
  let gate: SpendGate | null = null;
  let shipper: AuditShipper | null = null;
  const link = new ControlPlaneLink({
    controlPlanes: config.controlPlanes,
    dataplaneToken: config.dataplaneToken,
    dataplaneId: config.dataplaneId,
    cache,
    logger,
    onLeaseGrant: (grant) => {
      book?.onGrant(grant, performance.now());
      gate?.answered(grant);
    },
    onReclaim: (reclaim) => {
      const message = book?.onReclaim(reclaim, performance.now());
      if (message !== undefined && message !== null) link.send([message]);
    },
    onAuditAck: (ack) => shipper?.onAck(ack),
    onPricedIntents: (intents) => {
      for (const { keyId, intentId, pricedMicros } of intents) pricedIntents.remember(keyId, intentId, pricedMicros);
    },
    onSynced: () => {
      book?.onReconnect();
      shipper?.onReconnect();
    },
  });
  sendLookup = (keyHashes) => link.send([{ keyLookup: { keyHashes: [...keyHashes] } }]);
  const spool = AuditSpool.open({ dir: config.auditSpoolDir, incarnation: link.incarnation, maxBytes: config.auditSpoolMaxBytes });
  if (spool.pendingCount > 0) logger.info({ records: spool.pendingCount }, 'replaying audit records spooled by an earlier run');
  shipper = new AuditShipper({ spool, send: (messages) => link.send(messages) });
  const auditShipper = shipper;
  book = new LeaseBook({ dataplaneId: config.dataplaneId, incarnation: link.incarnation });
  const leaseBook = book;
  gate = new SpendGate({ book, send: (messages) => link.send(messages) });
  const unkeyedRefusals = new UnkeyedRefusals();
  const spoolAggregates = (force: boolean) => {
    const aggregates = unkeyedRefusals.flush(performance.now(), force);
    if (aggregates.length === 0) return;
    for (const record of aggregates) spool.append(record);
    try {
      spool.flush();
    } catch (error) {
      logger.error({ err: error instanceof Error ? error.message : String(error) }, 'could not write the audit spool');
    }
    auditShipper.recordSpooled();
  };
  const ticker = setInterval(() => {
    const messages = leaseBook.tick(performance.now());
    if (messages.length > 0) link.send(messages);
    spoolAggregates(false);
    auditShipper.pump();
  }, 200);
  // Keys not used for a while leave memory: what a data plane holds follows what it serves.
  const idleSweeper = setInterval(() => cache.sweepIdle(performance.now()), 30_000);
  const metrics = createDataPlaneMetrics(cache, pricedIntents, unkeyedRefusals);
  const proxy = createProxyHandler({
    cache, upstreams, logger, gate, spool, onSpooled: () => auditShipper.recordSpooled(), pricedIntents, replayableCalls: new ReplayableCalls(), unkeyedRefusals,
    priceTables: config.priceTables, leaseTtlMs: config.leaseTtlMs, maxBodyBytes: config.maxBodyBytes,
  });

  const server = createServer({
    maxHeaderSize: MAX_HEADER_BYTES,
    headersTimeout: Math.min(HEADERS_TIMEOUT_MS, config.requestTimeoutMs),
    requestTimeout: config.requestTimeoutMs,
    // Node checks those timeouts only this often (30 s by default).
    connectionsCheckingInterval: 1000,
  }, (request, response) => {
    if (answerProbe(request, response, cache, config.leaseTtlMs, metrics)) return;
    proxy(request, response).catch((error: unknown) => {
      logger.error({ err: error }, 'unhandled proxy failure');
      response.destroy();
    });
  });
  // Counting headers is ours to do (MAX_HEADER_COUNT); node would silently drop extras.
  server.maxHeadersCount = 0;
  server.on('clientError', (error: NodeJS.ErrnoException, socket: Duplex) => {
    metrics.clientErrors.inc({ code: clientErrorCode(error) });
    answerClientError(error, socket);
  });

  link.start();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(config.proxyAddress.port, config.proxyAddress.host, () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  logger.info({ proxy: `http://${config.proxyAddress.host}:${port}`, incarnation: link.incarnation }, 'data plane listening');
  return {
    port,
    cache,
    book: leaseBook,
    async stop() {
      clearInterval(ticker);
      clearInterval(idleSweeper);
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      spoolAggregates(true);
      // Give the control plane a moment to take the last audit records; what it does not take
      // stays in the spool and is replayed on the next start.
      for (let waited = 0; spool.pendingCount > 0 && waited < 2000; waited += 50) {
        auditShipper.pump();
        await new Promise((r) => setTimeout(r, 50));
      }
      // A clean shutdown reports everything and gives unreserved budget back.
      await link.drainAndStop(leaseBook.closeAll(performance.now()));
      auditShipper.close();
      spool.close();
      metrics.close();
      await upstreams.close();
    },
  };
}

function answerProbe(request: IncomingMessage, response: ServerResponse, cache: PolicyCache, leaseTtlMs: number, metrics: DataPlaneMetrics): boolean {
  // Every proxied call passes here: a money-moving POST leaves at once.
  if (request.method !== 'GET') return false;
  const path = (request.url ?? '').split('?')[0];
  if (path === '/metrics') {
    metrics.registry.metrics().then(
      (text) => response.writeHead(200, { 'content-type': metrics.registry.contentType }).end(text),
      () => response.writeHead(500).end(),
    );
    return true;
  }
  if (path !== '/healthz' && path !== '/readyz') return false;
  const ready = path === '/healthz' || cache.silenceMs(performance.now()) <= leaseTtlMs;
  const body = JSON.stringify(path === '/healthz' ? { status: 'ok' } : { status: ready ? 'ready' : 'not_ready', keys: cache.keyCount, revision: cache.revision });
  response.writeHead(ready ? 200 : 503, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) }).end(body);
  return true;
}

/** Node's code for a parser refusal, as a metric label: one of a small fixed set. */
function clientErrorCode(error: NodeJS.ErrnoException): string {
  const code = error.code ?? '';
  return /^(?:HPE_[A-Z_]{1,40}|ERR_HTTP_REQUEST_TIMEOUT|ECONNRESET|EPIPE)$/.test(code) ? code : 'other';
}

/** Requests node rejects before our handler runs still get a JSON answer and a Keybrake-Error. */
function answerClientError(error: NodeJS.ErrnoException, socket: Duplex): void {
  if (!socket.writable) {
    socket.destroy();
    return;
  }
  const code: ProxyErrorCode =
    error.code === 'HPE_HEADER_OVERFLOW' ? 'headers_too_large' : error.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? 'request_timeout' : 'request_malformed';
  const status = PROXY_ERROR_STATUS[code];
  const body = JSON.stringify({ error: { type: 'invalid_request_error', code, message: `Keybrake refused the request: ${code}` } });
  socket.end(`HTTP/1.1 ${status} ${code}\r\ncontent-type: application/json\r\nkeybrake-error: ${code}\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`);
}
