/**
 * The HTTP JSON admin API: a thin facade over OperatorService (the same calls gRPC serves),
 * plus health probes. Errors are `{error: {code, message}}` with the matching HTTP status.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';

import { OperatorError } from '../core/operator-error.js';
import type { Logger } from '../core/logger.js';
import { excerpt } from '../core/quote.js';
import type { Registry } from 'prom-client';
import {
  auditEntryToJson,
  operatorTokenToJson,
  parseAuditQuery,
  parseCreateTokenJson,
  parseJsonObject,
  parseKeySpecJson,
  parseListKeysQuery,
  parseVendorCredentialJson,
  readQuery,
  vaultKeyToJson,
} from './admin-json.js';
import type { Caller, OperatorService } from './operator-service.js';
import { createDashboardRoute } from './dashboard/static-route.js';

const MAX_BODY_BYTES = 1024 * 1024;

export interface AdminHttpOptions {
  readonly service: OperatorService;
  readonly logger: Logger;
  /** Resolves when the control plane can serve (etcd and PostgreSQL reachable). */
  readonly checkReady: () => Promise<void>;
  /** Prometheus registry served at GET /metrics (no token: it holds no secrets, ids or labels). */
  readonly metrics?: Registry;
}

interface Route {
  readonly method: string;
  readonly pattern: RegExp;
  readonly handle: (context: RequestContext, params: string[]) => Promise<Reply>;
  /** A probe: no token, and its query string is ignored (it has nothing to filter). */
  readonly open?: boolean;
  /** The handler reads the query string itself (readQuery); every other route takes none. */
  readonly query?: boolean;
}

interface RequestContext {
  readonly request: IncomingMessage;
  readonly url: URL;
  caller(): Promise<Caller>;
  body(): Promise<Record<string, unknown>>;
}

interface Reply {
  readonly status: number;
  readonly body: unknown;
}

export function createAdminHttpServer(options: AdminHttpOptions): Server {
  const { service, logger } = options;
  const ok = (body: unknown, status = 200): Reply => ({ status, body });
  const issue = async (ctx: RequestContext) => {
    const caller = await ctx.caller();
    const spec = parseKeySpecJson(await ctx.body());
    const { issued } = await service.issueKey(caller, { spec });
    return ok({ vault_key: issued?.vaultKey, ...vaultKeyToJson(issued!.key!) }, 201);
  };

  const routes: Route[] = [
    { method: 'GET', pattern: /^\/healthz$/, open: true, handle: async () => ok({ status: 'ok' }) },
    {
      method: 'GET',
      pattern: /^\/whoami$/,
      handle: async (ctx) => {
        const caller = await ctx.caller();
        return ok({ token_id: caller.tokenId, role: caller.role });
      },
    },
    {
      method: 'GET',
      pattern: /^\/readyz$/,
      open: true,
      handle: async () => {
        await options.checkReady();
        return ok({ status: 'ready' });
      },
    },
    { method: 'POST', pattern: /^\/vault\/keys$/, handle: issue },
    { method: 'POST', pattern: /^\/admin\/vault_keys$/, handle: issue },
    {
      method: 'GET',
      pattern: /^\/vault\/keys$/,
      query: true,
      handle: async (ctx) => {
        const response = await service.listKeys(await ctx.caller(), parseListKeysQuery(ctx.url.searchParams), { pageSize: 'limit', pageToken: 'cursor' });
        return ok({ keys: response.keys.map(vaultKeyToJson), next_cursor: response.nextPageToken === '' ? null : response.nextPageToken });
      },
    },
    {
      method: 'GET',
      pattern: /^\/vault\/keys\/([^/]+)$/,
      handle: async (ctx, [id]) => ok(vaultKeyToJson((await service.getKey(await ctx.caller(), { id: id! })).key!)),
    },
    {
      method: 'POST',
      pattern: /^\/vault\/keys\/([^/]+)\/revoke$/,
      handle: async (ctx, [id]) => ok(vaultKeyToJson((await service.revokeKey(await ctx.caller(), { id: id! })).key!)),
    },
    {
      method: 'DELETE',
      pattern: /^\/vault\/keys\/([^/]+)$/,
      handle: async (ctx, [id]) => {
        await service.deleteKey(await ctx.caller(), { id: id! });
        return ok({ id, deleted: true });
      },
    },
    {
      method: 'PUT',
      pattern: /^\/vendors\/([^/]+)\/credential$/,
      handle: async (ctx, [vendor]) => {
        const caller = await ctx.caller();
        const { credential } = await service.setVendorCredential(caller, { vendor: vendor!, ...parseVendorCredentialJson(await ctx.body()) });
        return ok({ vendor: credential!.vendor, account_sid: credential!.accountSid || null, updated_at: credential!.updatedAt?.toISOString() });
      },
    },
    {
      method: 'POST',
      pattern: /^\/tokens$/,
      handle: async (ctx) => {
        const caller = await ctx.caller();
        const { token, info } = await service.createToken(caller, parseCreateTokenJson(await ctx.body()));
        return ok({ token, ...operatorTokenToJson(info!) }, 201);
      },
    },
    {
      method: 'GET',
      pattern: /^\/tokens$/,
      handle: async (ctx) => ok({ tokens: (await service.listTokens(await ctx.caller())).tokens.map(operatorTokenToJson) }),
    },
    {
      method: 'DELETE',
      pattern: /^\/tokens\/([^/]+)$/,
      handle: async (ctx, [id]) => ok({ ...operatorTokenToJson((await service.revokeToken(await ctx.caller(), { id: id! })).token!), revoked: true }),
    },
    {
      method: 'GET',
      pattern: /^\/audit$/,
      query: true,
      handle: async (ctx) => {
        const response = await service.queryAudit(await ctx.caller(), parseAuditQuery(ctx.url.searchParams));
        return ok({ entries: response.entries.map(auditEntryToJson), next_cursor: response.nextCursor === '' ? null : response.nextCursor });
      },
    },
  ];

  // The operator dashboard: GET / and /dashboard/… serve its static files (and nothing else).
  const dashboard = createDashboardRoute({ logger });
  return createServer((request, response) => {
    if (dashboard.matches(request)) return dashboard.serve(request, response);
    if (request.method === 'GET' && request.url === '/metrics' && options.metrics !== undefined) {
      const registry = options.metrics;
      registry.metrics().then(
        (text) => response.writeHead(200, { 'content-type': registry.contentType }).end(text),
        () => response.writeHead(500).end(),
      );
      return;
    }
    handleRequest(request, routes, service)
      .catch((reason: unknown) => {
        const error = OperatorError.from(reason);
        if (error.code === 'internal') logger.error({ err: reason, method: request.method, url: request.url }, 'admin request failed');
        return { status: error.httpStatus, body: { error: { code: error.code, message: error.rawMessage } } };
      })
      .then((reply) => send(response, reply))
      .catch((reason: unknown) => logger.error({ err: reason }, 'could not answer admin request'));
  });
}

async function handleRequest(request: IncomingMessage, routes: readonly Route[], service: OperatorService): Promise<Reply> {
  const url = new URL(request.url ?? '/', 'http://admin.invalid');
  const matches = routes.map((route) => ({ route, match: route.pattern.exec(url.pathname) })).filter((m) => m.match !== null);
  const found = matches.find((m) => m.route.method === request.method);
  // The path is the caller's: named in a message, never echoed whole.
  const path = excerpt(url.pathname);
  if (found === undefined) {
    const message = matches.length > 0 ? `${request.method} is not allowed on ${path}` : `no route ${request.method} ${path}`;
    throw new OperatorError('not_found', message);
  }
  let params: string[];
  try {
    params = found.match!.slice(1).map((p) => decodeURIComponent(p));
  } catch {
    throw new OperatorError('malformed_request', `path: malformed percent-encoding in ${path}`);
  }
  let authenticated: Promise<Caller> | undefined;
  const context: RequestContext = {
    request,
    url,
    caller: () => (authenticated ??= service.authenticate(bearerToken(request))),
    body: async () => parseJsonObject(await readBody(request)),
  };
  if (found.route.open !== true) {
    // Who is asking comes first: a caller without a token learns nothing about the parameters.
    await context.caller();
    if (found.route.query !== true) readQuery(url.searchParams, []);
  }
  return found.route.handle(context, params);
}

function bearerToken(request: IncomingMessage): string | undefined {
  const header = request.headers.authorization;
  if (header === undefined) return undefined;
  const [scheme, token] = header.split(' ', 2);
  if (scheme?.toLowerCase() !== 'bearer' || token === undefined) {
    throw new OperatorError('unauthenticated', 'Authorization must be "Bearer <operator token>"');
  }
  return token.trim();
}

async function readBody(request: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of request as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_BODY_BYTES) throw new OperatorError('malformed_request', `body: larger than ${MAX_BODY_BYTES} bytes`);
    chunks.push(chunk);
  }
  try {
    return STRICT_UTF8.decode(Buffer.concat(chunks));
  } catch {
    // Decoding leniently would turn the bad bytes into U+FFFD: a secret or a label other than the one sent.
    throw new OperatorError('malformed_request', 'body: not valid UTF-8');
  }
}

const STRICT_UTF8 = new TextDecoder('utf-8', { fatal: true });

function send(response: ServerResponse, reply: Reply): void {
  const body = JSON.stringify(reply.body);
  response.writeHead(reply.status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(body),
    'cache-control': 'no-store',
  });
  response.end(body);
}
