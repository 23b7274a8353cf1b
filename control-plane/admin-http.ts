/**
 * The HTTP JSON admin API: a thin facade over OperatorService (the same calls gRPC serves),
 * plus health probes. Errors are `{error: {code, message}}` with the matching HTTP status.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';

import { OperatorError, invalidField } from '../core/operator-error.js';
import type { Logger } from '../core/logger.js';
import type { Registry } from 'prom-client';
import {
  auditEntryToJson,
  operatorTokenToJson,
  parseAuditQuery,
  parseJsonObject,
  parseKeySpecJson,
  parseListKeysQuery,
  parseTokenRole,
  requireString,
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
    { method: 'GET', pattern: /^\/healthz$/, handle: async () => ok({ status: 'ok' }) },
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
      handle: async (ctx) => {
        const response = await service.listKeys(await ctx.caller(), parseListKeysQuery(ctx.url.searchParams));
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
        const body = await ctx.body();
        for (const field of Object.keys(body)) if (field !== 'secret' && field !== 'account_sid') throw invalidField(field, 'unknown field');
        const { credential } = await service.setVendorCredential(caller, {
          vendor: vendor!,
          secret: body['secret'] === undefined ? '' : requireString(body['secret'], 'secret'),
          accountSid: body['account_sid'] === undefined ? '' : requireString(body['account_sid'], 'account_sid'),
        });
        return ok({ vendor: credential!.vendor, account_sid: credential!.accountSid || null, updated_at: credential!.updatedAt?.toISOString() });
      },
    },
    {
      method: 'POST',
      pattern: /^\/tokens$/,
      handle: async (ctx) => {
        const caller = await ctx.caller();
        const body = await ctx.body();
        const name = body['name'] === undefined ? '' : requireString(body['name'], 'name');
        const { token, info } = await service.createToken(caller, { role: parseTokenRole(body['role']), name });
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
  if (found === undefined) {
    const message = matches.length > 0 ? `${request.method} is not allowed on ${url.pathname}` : `no route ${request.method} ${url.pathname}`;
    throw new OperatorError('not_found', message);
  }
  let params: string[];
  try {
    params = found.match!.slice(1).map((p) => decodeURIComponent(p));
  } catch {
    throw new OperatorError('malformed_request', `path: malformed percent-encoding in ${url.pathname}`);
  }
  const context: RequestContext = {
    request,
    url,
    caller: () => service.authenticate(bearerToken(request)),
    body: async () => parseJsonObject(await readBody(request)),
  };
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
  return Buffer.concat(chunks).toString('utf8');
}

function send(response: ServerResponse, reply: Reply): void {
  const body = JSON.stringify(reply.body);
  response.writeHead(reply.status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(body),
    'cache-control': 'no-store',
  });
  response.end(body);
}
