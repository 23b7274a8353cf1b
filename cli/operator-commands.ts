/**
 * Operator commands over gRPC: `keys issue|list|get|revoke`, `vendors set`, `tokens create|list|revoke`.
 * Human tables by default, `--json` for scripts; errors are one line naming what to fix.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs, type ParseArgsConfig } from 'node:util';

import type { ServiceError } from '@grpc/grpc-js';

import { OperatorError } from '../core/operator-error.js';
import { StrictJsonError, isJsonObject, parseStrictJsonText } from '../core/cost/strict-json.js';
import { auditEntryToJson, operatorTokenToJson, parseAuditQuery, parseKeySpecJson, parseListKeysQuery, parseTokenRole, vaultKeyToJson } from '../control-plane/admin-json.js';
import { DEV_ADDRESSES_FILE, LOCAL_SECRETS_FILE } from './local-stack-files.js';
import { createOperatorClient } from './operator-client.js';

const HELP: Record<string, string> = {
  keys: `usage:
  keybrake keys issue --vendor stripe --endpoint "POST /v1/payment_intents" --daily-usd-cap 300 [--budget-usd N]
                      [--expires-in 4h] [--label metaflow/1234] [--count N] [--json]
  keybrake keys list [--label L] [--label-prefix P] [--vendor V] [--status active|expired|revoked] [--limit N] [--cursor C | --all] [--json]
                      one label: newest first; a label prefix: by label, then newest first; neither: newest first.
                      A page holds at most --limit keys (default 100, at most 1000; fewer with --vendor/--status);
                      --cursor C shows the page after the one that printed C; --all follows every page
                      (with --json: one key per line).
  keybrake keys get <id> [--json]
  keybrake keys revoke <id> [--json]`,
  vendors: `usage:
  keybrake vendors set <stripe|twilio|resend> --secret-stdin [--account-sid AC…]   (or --secret S)`,
  tokens: `usage:
  keybrake tokens create --role admin|issuer|auditor [--name "what it is for"] [--json]
  keybrake tokens list [--json]
  keybrake tokens revoke <id> [--json]       its next call is refused`,
  audit: `usage:
  keybrake audit query  [--label L] [--key-id vk_…] [--idempotency-key K] [--vendor V] [--object-id ch_…] [--since T] [--until T] [--limit N] [--json]
  keybrake audit tail   [same filters]            follow new records (Ctrl-C stops)
  keybrake audit export [same filters] [--format jsonl|csv]   every matching record, oldest page first, to stdout
  T is an ISO 8601 time or unix seconds.`,
};

const CONNECTION_HELP = `
connection: --addr host:port (or KEYBRAKE_CONTROL_PLANE, KEYBRAKE_GRPC_ADDR, the address \`keybrake dev\` runs at, default 127.0.0.1:7070)
            --token T (or KEYBRAKE_TOKEN, or KEYBRAKE_ADMIN_TOKEN, or .keybrake/local.json of \`keybrake dev\`; KEYBRAKE_HOME moves .keybrake)`;

const OPTIONS = {
  addr: { type: 'string' },
  token: { type: 'string' },
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
  vendor: { type: 'string' },
  endpoint: { type: 'string', multiple: true },
  'daily-usd-cap': { type: 'string' },
  'budget-usd': { type: 'string' },
  'expires-in': { type: 'string' },
  label: { type: 'string' },
  'label-prefix': { type: 'string' },
  status: { type: 'string' },
  limit: { type: 'string' },
  cursor: { type: 'string' },
  all: { type: 'boolean' },
  count: { type: 'string' },
  secret: { type: 'string' },
  'secret-stdin': { type: 'boolean' },
  'account-sid': { type: 'string' },
  role: { type: 'string' },
  name: { type: 'string' },
  'key-id': { type: 'string' },
  'idempotency-key': { type: 'string' },
  'object-id': { type: 'string' },
  since: { type: 'string' },
  until: { type: 'string' },
  format: { type: 'string' },
} as const satisfies ParseArgsConfig['options'];

/** `audit tail`: how far back each poll looks for records that arrived late, and its page bound. */
const TAIL_LOOK_BACK_MS = 5_000;
const TAIL_MAX_PAGES_PER_POLL = 100;

export async function runOperatorCommand(group: string, argv: readonly string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({ args: [...argv], options: OPTIONS, allowPositionals: true, strict: true });
  } catch (error) {
    return fail(`${error instanceof Error ? error.message : String(error)}\n${HELP[group] ?? ''}`);
  }
  const { values, positionals } = parsed;
  const [action, ...rest] = positionals;
  if (values.help || action === undefined || action === 'help') {
    process.stdout.write(`${HELP[group] ?? ''}\n${CONNECTION_HELP}\n`);
    return action === undefined && !values.help ? 2 : 0;
  }
  let token: string | undefined;
  let address: string;
  try {
    token = values.token ?? process.env['KEYBRAKE_TOKEN'] ?? process.env['KEYBRAKE_ADMIN_TOKEN'] ?? localStack(LOCAL_SECRETS_FILE, 'admin_token');
    address = values.addr ?? process.env['KEYBRAKE_CONTROL_PLANE']?.split(',')[0] ?? process.env['KEYBRAKE_GRPC_ADDR'] ?? localStack(DEV_ADDRESSES_FILE, 'grpc') ?? '127.0.0.1:7070';
  } catch (error) {
    if (error instanceof StrictJsonError) return fail(error.message);
    throw error;
  }
  const client = createOperatorClient(address, token);
  const print = (json: unknown, human: () => string) => process.stdout.write(values.json ? `${JSON.stringify(json, null, 2)}\n` : `${human()}\n`);

  try {
    switch (`${group} ${action}`) {
      case 'keys issue': {
        const spec = parseKeySpecJson(dropUndefined({
          vendor: values.vendor,
          allowed_endpoints: values.endpoint ?? [],
          daily_usd_cap: values['daily-usd-cap'],
          budget_usd: values['budget-usd'],
          expires_in: values['expires-in'],
          label: values.label,
        }));
        const count = values.count === undefined ? 1 : Number(values.count);
        if (!Number.isInteger(count) || count < 1) return fail('--count must be a whole number of keys, at least 1');
        // One gRPC call issues the whole batch: progress is its start and its end.
        const started = Date.now();
        if (process.stderr.isTTY && count > 1) process.stderr.write(`issuing ${count} keys…`);
        const response = await client.issueKeys({ specs: Array.from({ length: count }, () => spec) });
        if (process.stderr.isTTY && count > 1) process.stderr.write(`\rissued ${count} keys in ${Date.now() - started} ms\n`);
        const issued = response.issued.map((i) => ({ vault_key: i.vaultKey, ...vaultKeyToJson(i.key!) }));
        print(count === 1 ? issued[0] : issued, () =>
          table(['ID', 'VAULT KEY (shown once)', 'VENDOR', 'LABEL', 'CAP', 'EXPIRES'], issued.map((k) => [k.id, k.vault_key, k.vendor, k.label, `$${k.cap_usd}`, k.expires_at])));
        return 0;
      }
      case 'keys list': {
        if (values.all && values.cursor !== undefined) return fail('keys list takes --cursor or --all, not both');
        const query = new URLSearchParams(dropUndefined({ label: values.label, label_prefix: values['label-prefix'], vendor: values.vendor, status: values.status, limit: values.limit, cursor: values.cursor }));
        const request = parseListKeysQuery(query);
        const columns = ['ID', 'VENDOR', 'LABEL', 'STATUS', 'SPENT / CAP', 'EXPIRES'];
        const row = (k: ReturnType<typeof vaultKeyToJson>) => [k.id, k.vendor, k.label, k.status, `$${k.spent_usd} / $${k.cap_usd}`, k.expires_at];
        if (!values.all) {
          const response = await client.listKeys(request);
          const keys = response.keys.map(vaultKeyToJson);
          print({ keys, next_cursor: response.nextPageToken || null }, () => table(columns, keys.map(row)));
          if (!values.json && response.nextPageToken !== '') process.stderr.write(`more keys: --cursor ${response.nextPageToken} (or --all)\n`);
          return 0;
        }
        // Every page, printed as it comes: a label of 10,000 keys is 10 calls of 1,000, never held whole.
        let pageToken = '';
        let count = 0;
        do {
          const response = await client.listKeys({ ...request, pageSize: request.pageSize === 0 ? 1000 : request.pageSize, pageToken });
          const keys = response.keys.map(vaultKeyToJson);
          if (values.json) for (const key of keys) process.stdout.write(`${JSON.stringify(key)}\n`);
          else if (keys.length > 0) {
            // One table per page (columns as wide as that page needs); the header once.
            const text = table(columns, keys.map(row));
            process.stdout.write(`${count === 0 ? text : text.slice(text.indexOf('\n') + 1)}\n`);
          }
          count += keys.length;
          pageToken = response.nextPageToken;
          if (process.stderr.isTTY) process.stderr.write(`\rlisted ${count} keys`);
        } while (pageToken !== '');
        if (process.stderr.isTTY) process.stderr.write('\n');
        return 0;
      }
      case 'keys get':
      case 'keys revoke': {
        const id = rest[0];
        if (id === undefined) return fail(`keys ${action} needs a key id (vk_…)`);
        const response = await (action === 'get' ? client.getKey({ id }) : client.revokeKey({ id }));
        const key = vaultKeyToJson(response.key!);
        print(key, () => table(['FIELD', 'VALUE'], Object.entries(key).map(([k, v]) => [k, Array.isArray(v) ? v.join(', ') : String(v)])));
        return 0;
      }
      case 'vendors set': {
        const vendor = rest[0];
        if (vendor === undefined) return fail('vendors set needs a vendor: stripe, twilio or resend');
        const secret = values['secret-stdin'] ? readFileSync(0, 'utf8').trim() : values.secret;
        if (secret === undefined) return fail('vendors set needs --secret-stdin (preferred) or --secret');
        const response = await client.setVendorCredential({ vendor, secret, accountSid: values['account-sid'] ?? '' });
        print({ vendor: response.credential?.vendor, updated_at: response.credential?.updatedAt }, () => `stored ${vendor} credential (the secret is never shown again)`);
        return 0;
      }
      case 'audit query':
      case 'audit tail':
      case 'audit export': {
        const filters = dropUndefined({
          label: values.label, key_id: values['key-id'], idempotency_key: values['idempotency-key'], vendor: values.vendor,
          vendor_object_id: values['object-id'], since: values.since, until: values.until, limit: values.limit,
        });
        const request = parseAuditQuery(new URLSearchParams(filters));
        const columns = ['ts', 'decision', 'status', 'reason', 'method', 'path', 'usd', 'label', 'key_id', 'vendor_object_id', 'idempotency_key'] as const;
        const row = (e: Record<string, unknown>) => columns.map((c) => e[c]);
        if (action === 'query') {
          const response = await client.queryAudit(request);
          const entries = response.entries.map(auditEntryToJson);
          print({ entries, next_cursor: response.nextCursor || null }, () => table(columns.map((c) => c.toUpperCase()), entries.map(row)));
          return 0;
        }
        if (action === 'export') {
          const format = values.format ?? 'jsonl';
          if (format !== 'jsonl' && format !== 'csv') return fail('--format must be jsonl or csv');
          if (format === 'csv') process.stdout.write(`${CSV_COLUMNS.join(',')}\n`);
          let cursor = '';
          let count = 0;
          for (let page = 0; page < 1_000_000; page++) {
            const response = await client.queryAudit({ ...request, limit: 1000, cursor });
            for (const entry of response.entries.map(auditEntryToJson)) {
              process.stdout.write(format === 'jsonl' ? `${JSON.stringify(entry)}\n` : `${CSV_COLUMNS.map((c) => csvCell(entry[c])).join(',')}\n`);
              count++;
            }
            if (process.stderr.isTTY) process.stderr.write(`\rexported ${count} records`);
            cursor = response.nextCursor;
            if (cursor === '') break;
          }
          if (process.stderr.isTTY) process.stderr.write('\n');
          return 0;
        }
        // tail: newest first from the API, page after page; print in time order, then poll for
        // what is newer. Records reach PostgreSQL up to a few seconds after their time, so each
        // poll looks back a little and skips what it printed already.
        let sinceMs = Date.now() - 60_000;
        const printed = new Map<string, number>();
        for (;;) {
          const entries: Record<string, unknown>[] = [];
          let cursor = '';
          for (let page = 0; page < TAIL_MAX_PAGES_PER_POLL; page++) {
            const response = await client.queryAudit({ ...request, since: new Date(sinceMs), limit: 1000, cursor });
            entries.push(...response.entries.map(auditEntryToJson));
            cursor = response.nextCursor;
            if (cursor === '') break;
          }
          for (const entry of entries.reverse()) {
            const id = String(entry['id']);
            if (printed.has(id)) continue;
            const tsMs = Date.parse(String(entry['ts']));
            printed.set(id, tsMs);
            process.stdout.write(values.json ? `${JSON.stringify(entry)}\n` : `${row(entry).map((c) => (c === null ? '-' : String(c))).join('  ')}\n`);
            sinceMs = Math.max(sinceMs, tsMs - TAIL_LOOK_BACK_MS);
          }
          for (const [id, tsMs] of printed) if (tsMs < sinceMs) printed.delete(id);
          await new Promise((r) => setTimeout(r, 1000));
        }
      }
      case 'tokens list': {
        const tokens = (await client.listTokens({})).tokens.map(operatorTokenToJson);
        print({ tokens }, () => table(['ID', 'ROLE', 'NAME', 'CREATED'], tokens.map((t) => [String(t['id']), String(t['role']), String(t['name']), String(t['created_at'])])));
        return 0;
      }
      case 'tokens revoke': {
        const id = rest[0];
        if (id === undefined) return fail('tokens revoke needs a token id (tok_…; see keybrake tokens list)');
        const token: Record<string, unknown> = { ...operatorTokenToJson((await client.revokeToken({ id })).token!), revoked: true };
        print(token, () => table(['ID', 'ROLE', 'NAME', 'REVOKED'], [[String(token['id']), String(token['role']), String(token['name']), 'yes']]));
        return 0;
      }
      case 'tokens create': {
        const response = await client.createToken({ role: parseTokenRole(values.role), name: values.name ?? '' });
        const info: Record<string, unknown> = { token: response.token, ...operatorTokenToJson(response.info!) };
        print(info, () => table(['ID', 'ROLE', 'NAME', 'TOKEN (shown once)'], [[String(info['id']), String(info['role']), String(info['name']), response.token]]));
        return 0;
      }
      default:
        return fail(`unknown command: ${group} ${action}\n${HELP[group] ?? ''}`);
    }
  } catch (error) {
    return fail(describeError(error));
  } finally {
    client.close();
  }
}

function describeError(error: unknown): string {
  if (error instanceof OperatorError) return error.rawMessage;
  const serviceError = error as Partial<ServiceError>;
  if (typeof serviceError.code === 'number') {
    if (serviceError.code === 14) return `cannot reach the control plane (${serviceError.details}); check --addr or KEYBRAKE_CONTROL_PLANE`;
    return serviceError.details ?? String(error);
  }
  return error instanceof Error ? error.message : String(error);
}

function fail(message: string): number {
  process.stderr.write(`keybrake: ${message}\n`);
  return 2;
}

/**
 * A string member of a file `keybrake dev` keeps in its home (KEYBRAKE_HOME, default
 * ./.keybrake): the admin token, the address it serves gRPC on. Read strictly: a member given
 * twice is refused, not read as its last.
 */
function localStack(file: string, member: string): string | undefined {
  const path = join(process.env['KEYBRAKE_HOME'] ?? '.keybrake', file);
  if (!existsSync(path)) return undefined;
  const value = parseStrictJsonText(readFileSync(path, 'utf8'), path);
  const found = isJsonObject(value) ? value[member] : undefined;
  return typeof found === 'string' ? found : undefined;
}

function dropUndefined<T extends Record<string, unknown>>(object: T): Record<string, string> & Record<string, unknown> {
  return Object.fromEntries(Object.entries(object).filter(([, v]) => v !== undefined)) as Record<string, string>;
}

function table(headers: readonly string[], rows: readonly (readonly unknown[])[]): string {
  const cells = [headers, ...rows.map((row) => row.map((c) => (c === null || c === undefined ? '-' : String(c))))];
  const widths = headers.map((_, i) => Math.max(...cells.map((row) => String(row[i] ?? '').length)));
  return cells.map((row) => row.map((c, i) => String(c).padEnd(widths[i] ?? 0)).join('  ').trimEnd()).join('\n');
}

const CSV_COLUMNS = [
  'id', 'ts', 'key_id', 'label', 'vendor', 'method', 'path', 'status', 'decision', 'reason', 'amount', 'currency', 'usd_micros',
  'estimated_usd_micros', 'idempotency_key', 'vendor_request_id', 'vendor_object_id', 'stripe_charge_id', 'replayed', 'dataplane_id', 'latency_ms',
] as const;

function csvCell(value: unknown): string {
  if (value === null || value === undefined) return '';
  const text = String(value);
  return /[",\n\r]/.test(text) ? `"${text.replaceAll('"', '""')}"` : text;
}
