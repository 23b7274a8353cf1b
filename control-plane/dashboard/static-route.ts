/**
 * The operator dashboard's static files, served by the admin HTTP server on the JSON API's
 * origin: exactly the files under ./public (read once, at start) plus uPlot's minified build
 * from node_modules, at fixed URLs. A request target is looked up as it arrives, never decoded
 * and never joined to a file-system path, so there is nothing to traverse: anything that is
 * not one of those URLs is a 404.
 */
import { createHash } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { lstatSync, readdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { extname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';

import type { Logger } from '../../core/logger.js';

/** The page loads only its own scripts, styles and API; no inline script or style, no framing. */
export const DASHBOARD_CSP = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self'",
  "connect-src 'self'",
  "object-src 'none'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join('; ');

/** Where the page imports the chart library from (a classic script defining `uPlot`). */
export const CHART_LIBRARY_URL = '/dashboard/vendor/uplot.min.js';

const PUBLIC_DIR = fileURLToPath(new URL('./public/', import.meta.url));
const INDEX_URL = '/dashboard/index.html';
const FILE_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;
const CONTENT_TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.svg': 'image/svg+xml',
};

interface StaticFile {
  readonly body: Buffer;
  readonly gzip: Buffer | null;
  readonly contentType: string;
  readonly etag: string;
}

export interface DashboardRoute {
  /** The dashboard's part of the URL space: `/`, `/dashboard` and `/dashboard/…` (raw target). */
  matches(request: IncomingMessage): boolean;
  serve(request: IncomingMessage, response: ServerResponse): void;
  /** The URLs served, for tests and diagnostics. */
  readonly urls: readonly string[];
}

export interface DashboardRouteOptions {
  readonly logger?: Logger;
  /** Defaults to ./public beside this file. */
  readonly publicDir?: string;
}

export function createDashboardRoute(options: DashboardRouteOptions = {}): DashboardRoute {
  const files = new Map<string, StaticFile>();
  for (const [url, path] of listPublicFiles(options.publicDir ?? PUBLIC_DIR)) files.set(url, loadFile(path));
  const chartLibrary = resolveChartLibrary();
  if (chartLibrary === null) options.logger?.warn('uplot is not installed: the dashboard will show no charts');
  else files.set(CHART_LIBRARY_URL, loadFile(chartLibrary));

  return {
    urls: [...files.keys()],
    matches(request) {
      const path = rawPath(request);
      return path === '/' || path === '/dashboard' || path.startsWith('/dashboard/');
    },
    serve(request, response) {
      if (request.method !== 'GET' && request.method !== 'HEAD') {
        sendError(response, 405, 'method_not_allowed', `${request.method} is not allowed on the dashboard`, { allow: 'GET, HEAD' });
        return;
      }
      const path = rawPath(request);
      const file = files.get(path === '/' || path === '/dashboard' || path === '/dashboard/' ? INDEX_URL : path);
      if (file === undefined) {
        sendError(response, 404, 'not_found', 'no such dashboard file');
        return;
      }
      const headers: Record<string, string | number> = {
        ...SECURITY_HEADERS,
        'content-type': file.contentType,
        // No hashed file names (there is no build step): revalidate every time, cheaply, by ETag.
        'cache-control': 'no-cache',
        etag: file.etag,
        vary: 'accept-encoding',
      };
      if (request.headers['if-none-match'] === file.etag) {
        response.writeHead(304, headers);
        response.end();
        return;
      }
      const gzip = file.gzip !== null && /\bgzip\b/.test(String(request.headers['accept-encoding'] ?? ''));
      const body = gzip ? file.gzip! : file.body;
      if (gzip) headers['content-encoding'] = 'gzip';
      headers['content-length'] = body.length;
      response.writeHead(200, headers);
      response.end(request.method === 'HEAD' ? undefined : body);
    },
  };
}

const SECURITY_HEADERS: Record<string, string> = {
  'content-security-policy': DASHBOARD_CSP,
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer',
  'cross-origin-opener-policy': 'same-origin',
  'cross-origin-resource-policy': 'same-origin',
  'permissions-policy': 'camera=(), microphone=(), geolocation=(), payment=()',
};

/** The path of the request target exactly as sent (no decoding, no dot-segment removal). */
function rawPath(request: IncomingMessage): string {
  const target = request.url ?? '';
  const query = target.indexOf('?');
  return query === -1 ? target : target.slice(0, query);
}

/** Regular files with a known type and a plain name, by URL; symlinks and dotfiles are skipped. */
function listPublicFiles(dir: string, prefix = '/dashboard/'): [string, string][] {
  const found: [string, string][] = [];
  for (const name of readdirSync(dir).sort()) {
    if (!FILE_NAME.test(name)) continue;
    const path = join(dir, name);
    const stat = lstatSync(path);
    if (stat.isDirectory()) found.push(...listPublicFiles(path, `${prefix}${name}/`));
    else if (stat.isFile() && CONTENT_TYPES[extname(name)] !== undefined) found.push([`${prefix}${name}`, path]);
  }
  return found;
}

function loadFile(path: string): StaticFile {
  const body = readFileSync(path);
  const gzip = gzipSync(body, { level: 9 });
  return {
    body,
    gzip: gzip.length < body.length ? gzip : null,
    contentType: CONTENT_TYPES[extname(path)] ?? 'application/octet-stream',
    etag: `"${createHash('sha256').update(body).digest('base64url').slice(0, 27)}"`,
  };
}

function resolveChartLibrary(): string | null {
  try {
    return createRequire(import.meta.url).resolve('uplot/dist/uPlot.iife.min.js');
  } catch {
    return null;
  }
}

function sendError(response: ServerResponse, status: number, code: string, message: string, extra: Record<string, string> = {}): void {
  const body = JSON.stringify({ error: { code, message } });
  response.writeHead(status, {
    ...SECURITY_HEADERS,
    ...extra,
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(body),
    'cache-control': 'no-store',
  });
  response.end(body);
}
