/**
 * A foreach's first wave through real processes: hundreds of freshly issued keys make their
 * first call at once over two data planes (each key's first lease granted in bulk), while a
 * busy key keeps calling. Every first call succeeds, the busy key is never refused, no key
 * moves more than its cap (checked against the simulator's wiretap, the ground truth), and the
 * grants took a few etcd requests per hundred keys, not one per key.
 */
import { credentials, Metadata, status, type ClientDuplexStream, type ServiceError } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { DataPlaneServiceClient, type ConnectRequest, type ConnectResponse, type LeaseRequest } from '../../gen/keybrake/v1/dataplane.js';
import type { KeySpec } from '../../gen/keybrake/v1/operator.js';
import { createTestStack, startTestControlPlane, type TestControlPlane, type TestStack } from '../support/control-plane.js';
import { startTestDataPlane, type TestDataPlane } from '../support/data-plane.js';
import { headerValue, startStripeSimulator, type StripeSimulator } from '../simulators/index.js';

const SECRET = 'sk_test_firstwave_0123456789';
const WAVE = 300;
const IN_FLIGHT = 60;
/** $30 per branch key: its first $20 call fits, a second does not. */
const BRANCH_CAP_MICROS = 30_000_000;

let stack: TestStack;
let cp: TestControlPlane;
let sim: StripeSimulator;
let planes: TestDataPlane[] = [];

beforeAll(async () => {
  stack = await createTestStack();
  cp = await startTestControlPlane(stack);
  sim = await startStripeSimulator({ secretKey: SECRET });
  await cp.client.setVendorCredential({ vendor: 'stripe', secret: SECRET, accountSid: '' });
  planes = await Promise.all([0, 1].map(() => startTestDataPlane(stack, cp.grpcAddress, { stripe: sim.url })));
});
afterAll(async () => {
  await Promise.all(planes.map((p) => p.stop().catch(() => {})));
  await sim?.stop();
  await cp?.stop();
});

const spec = (label: string, budgetMicros: number): KeySpec => ({
  vendor: 'stripe', label, allowedEndpoints: ['POST /v1/payment_intents'], dailyCapMicros: 0, budgetMicros, expiresInSeconds: 3600, perCallEstimateMicros: 0,
});

async function createIntent(dp: TestDataPlane, vaultKey: string, description: string): Promise<{ status: number; code: string | null }> {
  const response = await fetch(`${dp.url}/v1/payment_intents`, {
    method: 'POST',
    headers: { authorization: `Bearer ${vaultKey}`, 'content-type': 'application/x-www-form-urlencoded' },
    body: `amount=2000&currency=usd&description=${encodeURIComponent(description)}`,
  });
  await response.arrayBuffer();
  return { status: response.status, code: response.headers.get('keybrake-error') };
}

async function ledgerRequests(): Promise<number> {
  const text = await (await fetch(`${cp.adminUrl}/metrics`)).text();
  return Number(/^keybrake_ledger_etcd_requests_total (\d+)$/m.exec(text)?.[1] ?? Number.NaN);
}

/** What Stripe accepted per description: the ground truth. */
function acceptedByDescription(): Map<string, number> {
  const accepted = new Map<string, number>();
  for (const request of sim.wiretap.requests()) {
    if (request.path !== '/v1/payment_intents' || request.response?.status !== 200) continue;
    expect(headerValue(request, 'authorization')).toBe(`Bearer ${SECRET}`);
    const body = new URLSearchParams(request.body.toString('utf8'));
    const description = body.get('description') ?? '';
    accepted.set(description, (accepted.get(description) ?? 0) + Number(body.get('amount')) * 10_000);
  }
  return accepted;
}

describe('a first wave of new keys', () => {
  it(`${WAVE} keys' first calls at once over two data planes: all answered 200, the busy key never refused, every cap held`, async () => {
    const { issued } = await cp.client.issueKeys({ specs: Array.from({ length: WAVE }, () => spec('metaflow/FirstWave/1', BRANCH_CAP_MICROS)) });
    expect(issued).toHaveLength(WAVE);
    const { issued: [busy] } = await cp.client.issueKeys({ specs: [spec('metaflow/Busy/1', 1_000_000_000)] });
    for (const dp of planes) expect((await createIntent(dp, busy!.vaultKey, 'busy')).status).toBe(200);

    let busyRunning = true;
    const busyOutcomes: { status: number; code: string | null }[] = [];
    const busyLoop = (async () => {
      for (let i = 0; busyRunning; i++) {
        busyOutcomes.push(await createIntent(planes[i % 2]!, busy!.vaultKey, 'busy'));
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
    })();

    const before = await ledgerRequests();
    const first: { status: number; code: string | null }[] = new Array(WAVE);
    let next = 0;
    await Promise.all(Array.from({ length: IN_FLIGHT }, async () => {
      for (let i = next++; i < WAVE; i = next++) first[i] = await createIntent(planes[i % 2]!, issued[i]!.vaultKey, `branch-${i}`);
    }));
    const grantRequests = (await ledgerRequests()) - before;
    busyRunning = false;
    await busyLoop;

    expect(first.filter((o) => o.status !== 200)).toEqual([]);
    expect(busyOutcomes.length).toBeGreaterThan(0);
    expect(busyOutcomes.filter((o) => o.status !== 200)).toEqual([]);
    // One read and one write per batch of up to 100 accounts (and a few for the busy key's
    // refills): one transaction per key would be at least WAVE.
    expect(grantRequests).toBeLessThan(WAVE / 2);

    // A second $20 call per key: the $30 cap has room for one only, whichever data plane holds
    // the rest of the first lease.
    const second = await Promise.all(issued.slice(0, 50).map((key, i) => createIntent(planes[(i + 1) % 2]!, key.vaultKey, `branch-${i}`)));
    for (const outcome of second) expect(outcome).toEqual({ status: 429, code: 'spend_cap_exceeded' });

    const accepted = acceptedByDescription();
    for (let i = 0; i < WAVE; i++) expect(accepted.get(`branch-${i}`), `branch-${i}`).toBe(20_000_000);
  }, 120_000);
});

describe('LeaseBatch on the data-plane stream', () => {
  /** A raw stream, as a data plane that reads LeaseGrants opens it. */
  function connect(): { stream: ClientDuplexStream<ConnectRequest, ConnectResponse>; messages: ConnectResponse[]; error: Promise<ServiceError>; close(): void } {
    const grpc = new DataPlaneServiceClient(cp.grpcAddress, credentials.createInsecure());
    const metadata = new Metadata();
    metadata.set('authorization', `Bearer ${stack.dataplaneToken}`);
    const stream = grpc.connect(metadata);
    const messages: ConnectResponse[] = [];
    stream.on('data', (message: ConnectResponse) => messages.push(message));
    const error = new Promise<ServiceError>((resolve) => stream.on('error', resolve));
    stream.write({ hello: { dataplaneId: 'dp-raw', incarnation: 'ab12', leaseBatches: true } });
    return { stream, messages, error, close: () => { stream.cancel(); grpc.close(); } };
  }

  async function until<T>(find: () => T | undefined): Promise<T> {
    for (let i = 0; i < 200; i++) {
      const found = find();
      if (found !== undefined) return found;
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
    throw new Error('not received within 5 s');
  }

  it('answers the requests of one batch with LeaseGrants, and says so in its Welcome', async () => {
    const { issued } = await cp.client.issueKeys({ specs: [spec('raw/1', 10_000_000), spec('raw/2', 10_000_000)] });
    const raw = connect();
    try {
      const welcome = await until(() => raw.messages.find((m) => m.welcome !== undefined)?.welcome);
      expect(welcome.leaseBatches).toBe(true);
      await until(() => raw.messages.find((m) => m.snapshot !== undefined));
      const request = (keyId: string, seq: number): LeaseRequest => ({ keyId, window: 'life', leaseId: 'dp-raw/ab12/1', seq, wantTotalMicros: 4_000_000, needTotalMicros: 2_000_000, reportedMicros: 0 });
      raw.stream.write({ leaseBatch: { messages: issued.map((key, i) => ({ request: request(key.key!.id, i + 1) })) } });
      const grants = await until(() => {
        const all = raw.messages.flatMap((m) => m.leaseGrants?.grants ?? []);
        return all.length === 2 ? all : undefined;
      });
      expect(grants.map((g) => [g.keyId, g.grantedTotalMicros, g.refused]).sort()).toEqual(issued.map((key) => [key.key!.id, 4_000_000, '']).sort());
      // Given back, so the keys' budgets are whole again.
      raw.stream.write({ leaseBatch: { messages: issued.map((key, i) => ({ report: { keyId: key.key!.id, window: 'life', leaseId: 'dp-raw/ab12/1', seq: 10 + i, reportedMicros: 0, keepTotalMicros: -1, close: true } })) } });
      for (const key of issued) {
        const leased = async () => (await cp.http('GET', `/vault/keys/${key.key!.id}`)).body.leased_micros as number;
        for (let i = 0; i < 200 && (await leased()) !== 0; i++) await new Promise((resolve) => setTimeout(resolve, 25));
        expect(await leased()).toBe(0);
      }
    } finally {
      raw.close();
    }
  });

  it('refuses a batch of more than 10,000 messages with INVALID_ARGUMENT naming the field, granting nothing', async () => {
    const raw = connect();
    try {
      await until(() => raw.messages.find((m) => m.snapshot !== undefined));
      const request: LeaseRequest = { keyId: 'vk_nosuchkey00000000000', window: 'life', leaseId: 'dp-raw/ab12/1', seq: 1, wantTotalMicros: 1, needTotalMicros: 1, reportedMicros: 0 };
      raw.stream.write({ leaseBatch: { messages: Array.from({ length: 10_001 }, (_, i) => ({ request: { ...request, seq: i + 1 } })) } });
      const error = await raw.error;
      expect(error.code).toBe(status.INVALID_ARGUMENT);
      expect(error.details).toMatch(/^lease_batch: at most 10000 messages, got 10001$/);
      expect(raw.messages.some((m) => m.leaseGrants !== undefined || m.leaseGrant !== undefined)).toBe(false);
    } finally {
      raw.close();
    }
  });
});
