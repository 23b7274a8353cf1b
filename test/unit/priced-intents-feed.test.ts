import { describe, expect, it } from 'vitest';

import { notificationPayloads, parsePayload, pricedIntentsIn } from '../../control-plane/priced-intents.js';
import type { AuditRecord } from '../../gen/keybrake/v1/dataplane.js';

const creation: AuditRecord = {
  seq: 1, incarnation: 'i', tsUnixMs: 0, keyId: 'key_1', label: '', vendor: 'stripe', method: 'POST', path: '/v1/payment_intents', status: 200,
  decision: 'allowed', reason: '', amount: 600, currency: 'usd', estimatedUsdMicros: 6_000_000, usdMicros: 6_000_000, idempotencyKey: '',
  vendorRequestId: 'req_1', vendorObjectId: 'pi_1', stripeChargeId: '', replayed: false, latencyMs: 1, callCount: 0,
};

describe('pricedIntentsIn', () => {
  it('takes only creations that were priced and answered 2xx', () => {
    expect(pricedIntentsIn([creation])).toEqual([{ keyId: 'key_1', intentId: 'pi_1', pricedMicros: creation.usdMicros }]);
    const not = [
      { ...creation, decision: 'denied' },
      { ...creation, status: 402 },
      { ...creation, usdMicros: 0 },
      { ...creation, replayed: true },
      { ...creation, path: '/v1/payment_intents/pi_1/confirm' },
      { ...creation, method: 'GET' },
      { ...creation, vendor: 'resend' },
      { ...creation, vendorObjectId: 'ch_1' },
      { ...creation, keyId: '' },
    ];
    for (const record of not) expect(pricedIntentsIn([record])).toEqual([]);
  });
});

describe('notification payloads', () => {
  it('split below PostgreSQL’s NOTIFY limit and read back whole', () => {
    const intents = Array.from({ length: 2000 }, (_, i) => ({ keyId: `key_${i % 7}`, intentId: `pi_${'x'.repeat(24)}${i}`, pricedMicros: i * 1_000_003 }));
    const payloads = notificationPayloads(intents);
    expect(payloads.length).toBeGreaterThan(1);
    for (const payload of payloads) expect(Buffer.byteLength(payload)).toBeLessThan(8000);
    expect(payloads.flatMap(parsePayload)).toEqual(intents);
  });

  it('ignores what is not a list of intents, and reads a replica’s pairs without an amount as priced at 0', () => {
    expect(parsePayload('{"a":1}')).toEqual([]);
    expect(parsePayload('[["k",1],["k","pi_1"],["k","pi_2",2999],["k","pi_3",-5]]')).toEqual([
      { keyId: 'k', intentId: 'pi_1', pricedMicros: 0 },
      { keyId: 'k', intentId: 'pi_2', pricedMicros: 2999 },
      { keyId: 'k', intentId: 'pi_3', pricedMicros: 0 },
    ]);
  });
});
