/**
 * The operator API's logic, shared by the gRPC server and the HTTP facade. Requests and
 * answers are the generated proto messages, so both transports say exactly the same thing.
 */
import { OperatorError, invalidField } from '../core/operator-error.js';
import { generateSecret, generateTaggedVaultKey, isWellFormedSecret, randomBase62, vaultKeyTagKey } from '../core/secret-format.js';
import { parseVendor } from '../core/vendors.js';
import {
  KeyStatus,
  TokenRole,
  type CreateTokenRequest,
  type CreateTokenResponse,
  type DeleteKeyRequest,
  type DeleteKeyResponse,
  type GetKeyRequest,
  type GetKeyResponse,
  type IssuedKey,
  type IssueKeyRequest,
  type IssueKeyResponse,
  type IssueKeysRequest,
  type IssueKeysResponse,
  type KeySpec,
  type KeySpend,
  type ListKeysRequest,
  type ListKeysResponse,
  type ListTokensResponse,
  type OperatorToken,
  type QueryAuditRequest,
  type QueryAuditResponse,
  type RevokeKeyRequest,
  type RevokeKeyResponse,
  type RevokeTokenRequest,
  type RevokeTokenResponse,
  type SetVendorCredentialRequest,
  type SetVendorCredentialResponse,
  type VaultKey,
} from '../gen/keybrake/v1/operator.js';
import { constantTimeEqual, keyedHash, sealSecret, type DerivedKeys } from './crypto.js';
import type { AuditStore } from './audit-store.js';
import { compileKeySpec } from './key-spec.js';
import { bindingCapMicros, KEY_ID_PATTERN, keyStatus, newKeyId, type KeyRecord, type KeyStatusName } from './key-record.js';
import type { KeyStore, TokenRecord, TokenRoleName } from './store.js';
import { quote } from '../core/quote.js';
import { FILTER_MAX_LENGTH, checkText, checkTime, decodeCursorJson, isStorableText } from './request-bounds.js';
import { decodePageToken, encodePageToken, listingScope } from './key-listing.js';

export const MAX_BATCH_SIZE = 10_000;
const DEFAULT_PAGE_SIZE = 100;
const MAX_PAGE_SIZE = 1000;
/** With a vendor or status filter, one ListKeys request looks at no more than this many keys per key it may return. */
export const EXAMINED_PER_KEY = 10;
const MAX_SECRET_LENGTH = 4096;
const MAX_TOKEN_NAME_LENGTH = 200;
const AUDIT_DECISIONS: readonly string[] = ['', 'allowed', 'denied'];

/** What ListKeys' paging fields are called where the request came from (HTTP: limit, cursor). */
export interface ListKeysFieldNames {
  readonly pageSize: string;
  readonly pageToken: string;
}
const GRPC_LIST_KEYS_FIELDS: ListKeysFieldNames = { pageSize: 'page_size', pageToken: 'page_token' };

export type Action = 'keys.issue' | 'keys.read' | 'keys.revoke' | 'keys.delete' | 'vendors.write' | 'tokens.create' | 'tokens.read' | 'tokens.revoke' | 'audit.read';

const ROLE_ACTIONS: Record<TokenRoleName, ReadonlySet<Action>> = {
  admin: new Set<Action>(['keys.issue', 'keys.read', 'keys.revoke', 'keys.delete', 'vendors.write', 'tokens.create', 'tokens.read', 'tokens.revoke', 'audit.read']),
  issuer: new Set<Action>(['keys.issue', 'keys.read', 'keys.revoke']),
  auditor: new Set<Action>(['keys.read', 'audit.read']),
};

export interface Caller {
  readonly tokenId: string;
  readonly role: TokenRoleName;
}

export interface OperatorServiceOptions {
  readonly store: KeyStore;
  readonly keys: DerivedKeys;
  /** The bootstrap admin token (KEYBRAKE_ADMIN_TOKEN). */
  readonly adminToken: string;
  /** Spend per key from the budget ledger; without it keys show nothing spent. */
  readonly spend?: (records: readonly KeyRecord[]) => Promise<Map<string, KeySpend>>;
  /** The audit trail; without it QueryAudit is unimplemented. */
  readonly audit?: AuditStore;
  readonly now?: () => number;
}

export class OperatorService {
  private readonly store: KeyStore;
  private readonly keys: DerivedKeys;
  /** Data planes tell issued vault keys from forged ones by this tag (core/secret-format.ts). */
  private readonly vaultKeyTagKey: Buffer;
  private readonly adminToken: string;
  private readonly now: () => number;
  private readonly spend: (records: readonly KeyRecord[]) => Promise<Map<string, KeySpend>>;
  private readonly audit: AuditStore | undefined;

  constructor(options: OperatorServiceOptions) {
    this.audit = options.audit;
    this.spend = options.spend ?? (async () => new Map());
    this.store = options.store;
    this.keys = options.keys;
    this.vaultKeyTagKey = vaultKeyTagKey(options.keys.pepper);
    this.adminToken = options.adminToken;
    this.now = options.now ?? Date.now;
  }

  /** Who presents this bearer token; throws `unauthenticated` for a missing or unknown one. */
  async authenticate(token: string | undefined): Promise<Caller> {
    if (token === undefined || token === '') {
      throw new OperatorError('unauthenticated', 'missing operator token: send "Authorization: Bearer <token>"');
    }
    if (constantTimeEqual(token, this.adminToken)) return { tokenId: 'bootstrap', role: 'admin' };
    if (isWellFormedSecret(token, 'operatorToken')) {
      const record = await this.store.findTokenByHash(keyedHash(this.keys.pepper, token));
      if (record !== null) return { tokenId: record.id, role: record.role };
    }
    throw new OperatorError('unauthenticated', 'unknown operator token');
  }

  authorize(caller: Caller, action: Action): void {
    if (!ROLE_ACTIONS[caller.role].has(action)) {
      throw new OperatorError('permission_denied', `role ${caller.role} may not ${action.replace('.', ' ')}`);
    }
  }

  async issueKey(caller: Caller, request: IssueKeyRequest): Promise<IssueKeyResponse> {
    this.authorize(caller, 'keys.issue');
    if (request.spec === undefined) throw invalidField('spec', 'is required');
    const [issued] = await this.issue([request.spec], '');
    return { issued };
  }

  async issueKeys(caller: Caller, request: IssueKeysRequest): Promise<IssueKeysResponse> {
    this.authorize(caller, 'keys.issue');
    if (request.specs.length === 0) throw invalidField('specs', 'at least one spec is required');
    if (request.specs.length > MAX_BATCH_SIZE) throw invalidField('specs', `at most ${MAX_BATCH_SIZE} per call, got ${request.specs.length}`);
    return { issued: await this.issue(request.specs, 'specs') };
  }

  /** Validates every spec first, so a bad one anywhere in a batch writes nothing. */
  private async issue(specs: readonly KeySpec[], field: string): Promise<IssuedKey[]> {
    const compiled = specs.map((spec, i) => compileKeySpec(spec, field === '' ? '' : `${field}[${i}].`));
    const now = this.now();
    const secrets: string[] = [];
    const records = compiled.map((spec): KeyRecord => {
      const vaultKey = generateTaggedVaultKey(this.vaultKeyTagKey);
      secrets.push(vaultKey);
      return {
        id: newKeyId(now),
        keyHash: keyedHash(this.keys.pepper, vaultKey),
        vendor: spec.vendor,
        label: spec.label,
        allowedEndpoints: spec.allowedEndpoints,
        dailyCapMicros: spec.dailyCapMicros,
        budgetMicros: spec.budgetMicros,
        perCallEstimateMicros: spec.perCallEstimateMicros,
        createdAtMs: now,
        expiresAtMs: now + spec.ttlSeconds * 1000,
        revokedAtMs: null,
      };
    });
    await this.store.createKeys(records);
    return records.map((record, i) => ({ vaultKey: secrets[i]!, key: this.toVaultKey(record, undefined) }));
  }

  async getKey(caller: Caller, request: GetKeyRequest): Promise<GetKeyResponse> {
    this.authorize(caller, 'keys.read');
    const record = await this.requireKey(request.id);
    return { key: this.toVaultKey(record, (await this.spend([record])).get(record.id)) };
  }

  async listKeys(caller: Caller, request: ListKeysRequest, names: ListKeysFieldNames = GRPC_LIST_KEYS_FIELDS): Promise<ListKeysResponse> {
    this.authorize(caller, 'keys.read');
    const pageSize = request.pageSize === 0 ? DEFAULT_PAGE_SIZE : request.pageSize;
    if (!Number.isInteger(pageSize) || pageSize < 1 || pageSize > MAX_PAGE_SIZE) throw invalidField(names.pageSize, `must be 1 to ${MAX_PAGE_SIZE}`);
    checkText(request.label, 'label', FILTER_MAX_LENGTH.label);
    checkText(request.labelPrefix, 'label_prefix', FILTER_MAX_LENGTH.label_prefix);
    const vendor = request.vendor === '' ? null : parseVendor(request.vendor);
    const status = request.status === KeyStatus.KEY_STATUS_UNSPECIFIED ? null : statusName(request.status);
    const scope = listingScope(request.label, request.labelPrefix);
    const after = request.pageToken === '' ? null : decodePageToken(request.pageToken, scope, names.pageToken);
    const now = this.now();

    // A walk of the label index (label, label_prefix) or of every key, from the cursor on, in
    // etcd's key order (key-listing.ts). vendor and status are filters on what the walk finds:
    // one request looks at most at EXAMINED_PER_KEY × limit keys, so a page may hold fewer than
    // `limit` and still carry a cursor.
    const filtered = vendor !== null || status !== null;
    const page = await this.store.listKeyPage({
      label: request.label,
      labelPrefix: request.labelPrefix,
      after,
      limit: pageSize,
      maxExamined: filtered ? EXAMINED_PER_KEY * pageSize : pageSize,
      accept: (r) => (vendor === null || r.vendor === vendor) && (status === null || keyStatus(r, now) === status),
    });
    const spend = await this.spend(page.records);
    return {
      keys: page.records.map((r) => this.toVaultKey(r, spend.get(r.id))),
      nextPageToken: page.next === null ? '' : encodePageToken(page.next),
    };
  }

  async revokeKey(caller: Caller, request: RevokeKeyRequest): Promise<RevokeKeyResponse> {
    this.authorize(caller, 'keys.revoke');
    checkId(request.id);
    const now = this.now();
    const updated = await this.store.updateKey(request.id, (current) => (current.revokedAtMs !== null ? current : { ...current, revokedAtMs: now }));
    if (updated === null) throw notFound(request.id);
    return { key: this.toVaultKey(updated, (await this.spend([updated])).get(updated.id)) };
  }

  async deleteKey(caller: Caller, request: DeleteKeyRequest): Promise<DeleteKeyResponse> {
    this.authorize(caller, 'keys.delete');
    checkId(request.id);
    if (!(await this.store.deleteKey(request.id))) throw notFound(request.id);
    return {};
  }

  async setVendorCredential(caller: Caller, request: SetVendorCredentialRequest): Promise<SetVendorCredentialResponse> {
    this.authorize(caller, 'vendors.write');
    const vendor = parseVendor(request.vendor);
    if (request.secret === '') throw invalidField('secret', 'is required');
    if (request.secret.length > MAX_SECRET_LENGTH) throw invalidField('secret', `longer than ${MAX_SECRET_LENGTH} characters`);
    if (/\s/.test(request.secret)) throw invalidField('secret', 'must not contain whitespace');
    // The data plane sends it in an HTTP header: visible ASCII is all a vendor's key ever is.
    if (!/^[\x21-\x7e]+$/.test(request.secret)) throw invalidField('secret', 'must be printable ASCII (a vendor API key or token)');
    if (vendor === 'twilio' && !/^AC[0-9a-fA-F]{32}$/.test(request.accountSid)) {
      throw invalidField('account_sid', 'twilio needs the account SID: "AC" followed by 32 hex digits');
    }
    if (vendor !== 'twilio' && request.accountSid !== '') throw invalidField('account_sid', `only twilio takes an account SID, not ${vendor}`);
    const recordId = `cred_${randomBase62(16)}`;
    const updatedAtMs = this.now();
    const plaintext = Buffer.from(JSON.stringify({ secret: request.secret, account_sid: request.accountSid }), 'utf8');
    const sealed = sealSecret(this.keys.wrapKey, { vendor, recordId }, plaintext);
    plaintext.fill(0);
    await this.store.putCredential({ vendor, accountSid: request.accountSid, updatedAtMs, sealed });
    return { credential: { vendor, accountSid: request.accountSid, updatedAt: new Date(updatedAtMs) } };
  }

  async createToken(caller: Caller, request: CreateTokenRequest): Promise<CreateTokenResponse> {
    this.authorize(caller, 'tokens.create');
    const role = roleName(request.role);
    checkText(request.name, 'name', MAX_TOKEN_NAME_LENGTH, { controls: false });
    const token = generateSecret('operatorToken');
    const record: TokenRecord = { id: `tok_${randomBase62(16)}`, tokenHash: keyedHash(this.keys.pepper, token), name: request.name, role, createdAtMs: this.now() };
    await this.store.createToken(record);
    return { token, info: { id: record.id, name: record.name, role: request.role, createdAt: new Date(record.createdAtMs) } };
  }

  async listTokens(caller: Caller): Promise<ListTokensResponse> {
    this.authorize(caller, 'tokens.read');
    return { tokens: (await this.store.listTokens()).map(toOperatorToken) };
  }

  /** Deletes a token; authentication reads the store on every call, so its next call is refused. */
  async revokeToken(caller: Caller, request: RevokeTokenRequest): Promise<RevokeTokenResponse> {
    this.authorize(caller, 'tokens.revoke');
    if (!/^tok_[0-9A-Za-z]{16}$/.test(request.id)) throw invalidField('id', `${quote(request.id)} is not an operator token id (tok_…)`);
    const record = await this.store.deleteToken(request.id);
    if (record === null) throw new OperatorError('not_found', `no operator token ${request.id}`);
    return { token: toOperatorToken(record) };
  }

  async queryAudit(caller: Caller, request: QueryAuditRequest): Promise<QueryAuditResponse> {
    this.authorize(caller, 'audit.read');
    if (this.audit === undefined) throw new OperatorError('unimplemented', 'this control plane has no audit store');
    const limit = request.limit === 0 ? DEFAULT_PAGE_SIZE : request.limit;
    if (!Number.isInteger(limit) || limit < 1 || limit > MAX_PAGE_SIZE) throw invalidField('limit', `must be 1 to ${MAX_PAGE_SIZE}`);
    // Every filter reaches PostgreSQL: each is checked to be something it can compare.
    checkText(request.idempotencyKey, 'idempotency_key', FILTER_MAX_LENGTH.idempotency_key);
    checkText(request.label, 'label', FILTER_MAX_LENGTH.label);
    checkText(request.keyId, 'key_id', FILTER_MAX_LENGTH.key_id);
    checkText(request.vendorObjectId, 'vendor_object_id', FILTER_MAX_LENGTH.vendor_object_id);
    if (request.vendor !== '') parseVendor(request.vendor);
    if (!AUDIT_DECISIONS.includes(request.decision)) throw invalidField('decision', `must be allowed or denied, got ${quote(request.decision)}`);
    if (request.cursor !== '') checkAuditCursor(request.cursor);
    const since = checkTime(request.since, 'since');
    const until = checkTime(request.until, 'until');
    if (since !== undefined && until !== undefined && since >= until) throw invalidField('since', 'must be before until');
    const { rows, nextCursor } = await this.audit.query({
      idempotencyKey: request.idempotencyKey, label: request.label, keyId: request.keyId, vendor: request.vendor, vendorObjectId: request.vendorObjectId, decision: request.decision,
      ...(since === undefined ? {} : { sinceMs: since }), ...(until === undefined ? {} : { untilMs: until }), limit, cursor: request.cursor,
    });
    return {
      entries: rows.map((row) => ({
        id: row.id, ts: row.ts, keyId: row.keyId, label: row.label, vendor: row.vendor, method: row.method, path: row.path, status: row.status,
        decision: row.decision, reason: row.reason, amount: row.amount ?? -1, currency: row.currency, usdMicros: row.usdMicros,
        estimatedUsdMicros: row.estimatedUsdMicros, idempotencyKey: row.idempotencyKey, vendorRequestId: row.vendorRequestId,
        vendorObjectId: row.vendorObjectId, stripeChargeId: row.stripeChargeId, dataplaneId: row.dataplaneId, latencyMs: row.latencyMs, replayed: row.replayed,
        callCount: row.callCount, flag: row.flag,
      })),
      nextCursor,
    };
  }

  private async requireKey(id: string): Promise<KeyRecord> {
    checkId(id);
    const record = await this.store.getKey(id);
    if (record === null) throw notFound(id);
    return record;
  }

  private toVaultKey(record: KeyRecord, spend: KeySpend | undefined): VaultKey {
    const capMicros = bindingCapMicros(record);
    return {
      id: record.id,
      vendor: record.vendor,
      label: record.label,
      allowedEndpoints: [...record.allowedEndpoints],
      dailyCapMicros: record.dailyCapMicros,
      budgetMicros: record.budgetMicros,
      createdAt: new Date(record.createdAtMs),
      expiresAt: new Date(record.expiresAtMs),
      revokedAt: record.revokedAtMs === null ? undefined : new Date(record.revokedAtMs),
      status: STATUS_ENUM[keyStatus(record, this.now())],
      perCallEstimateMicros: record.perCallEstimateMicros ?? 0,
      // Until a data plane leases from it, a key's ledger holds nothing: all of the cap remains.
      spend: spend ?? { capMicros, spentMicros: 0, leasedMicros: 0, atRiskMicros: 0, remainingMicros: capMicros },
    };
  }
}

const STATUS_ENUM: Record<KeyStatusName, KeyStatus> = {
  active: KeyStatus.KEY_STATUS_ACTIVE,
  expired: KeyStatus.KEY_STATUS_EXPIRED,
  revoked: KeyStatus.KEY_STATUS_REVOKED,
};

function statusName(status: KeyStatus): KeyStatusName {
  for (const [name, value] of Object.entries(STATUS_ENUM)) if (value === status) return name as KeyStatusName;
  throw invalidField('status', 'must be active, expired or revoked');
}

export const ROLE_ENUM: Record<TokenRoleName, TokenRole> = {
  admin: TokenRole.TOKEN_ROLE_ADMIN,
  issuer: TokenRole.TOKEN_ROLE_ISSUER,
  auditor: TokenRole.TOKEN_ROLE_AUDITOR,
};

function toOperatorToken(record: TokenRecord): OperatorToken {
  return { id: record.id, name: record.name, role: ROLE_ENUM[record.role], createdAt: new Date(record.createdAtMs) };
}

function roleName(role: TokenRole): TokenRoleName {
  for (const [name, value] of Object.entries(ROLE_ENUM)) if (value === role) return name as TokenRoleName;
  throw invalidField('role', 'must be admin, issuer or auditor');
}

function checkId(id: string): void {
  if (!KEY_ID_PATTERN.test(id)) throw invalidField('id', `${quote(id)} is not a vault key id (vk_…)`);
}

function notFound(id: string): OperatorError {
  return new OperatorError('not_found', `no vault key ${id}`);
}

/** 0001-01-01 and 9999-12-31T23:59:59.999999Z in microseconds: what PostgreSQL's timestamptz arithmetic takes. */
const CURSOR_MIN_MICROS = -62_135_596_800_000_000n;
const CURSOR_MAX_MICROS = 253_402_300_799_999_999n;

/**
 * An audit cursor is [ts in microseconds (decimal text; older ones milliseconds, a number), data
 * plane, incarnation, seq] in base64url JSON (AuditStore encodes and decodes it). Each part goes
 * to PostgreSQL as a query parameter, so each is checked to be one it takes: a cursor made up to
 * hold a NUL, a 20-digit time or a seq of 1e300 is refused here instead of failing there.
 */
function checkAuditCursor(cursor: string): void {
  const value = decodeCursorJson(cursor);
  if (Array.isArray(value) && value.length === 4) {
    const [ts, dataplaneId, incarnation, seq] = value as unknown[];
    const micros = typeof ts === 'number' && Number.isSafeInteger(ts) ? BigInt(ts) * 1000n : typeof ts === 'string' && /^-?\d{1,19}$/.test(ts) ? BigInt(ts) : null;
    const storable = (text: unknown) => typeof text === 'string' && isStorableText(text, 255);
    if (micros !== null && micros >= CURSOR_MIN_MICROS && micros <= CURSOR_MAX_MICROS && storable(dataplaneId) && storable(incarnation) && typeof seq === 'number' && Number.isSafeInteger(seq)) return;
  }
  throw invalidField('cursor', 'is not a cursor this API returned');
}
