import { describe, expect, it } from 'vitest';

import { guard } from '../../control-plane/etcd-guard.js';
import { OperatorError } from '../../core/operator-error.js';

describe('guard (etcd errors as the caller sees them)', () => {
  it('says etcd is unreachable when it is', async () => {
    const error = await guard(Promise.reject(new Error('14 UNAVAILABLE: No connection established'))).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(OperatorError);
    expect((error as OperatorError).message).toBe('[unavailable] etcd: 14 UNAVAILABLE: No connection established');
  });

  it('says an answer too large for a message is that, from an etcd that is up, and what to change', async () => {
    const error = await guard(Promise.reject(new Error('8 RESOURCE_EXHAUSTED: Received message larger than max (5197776 vs 4194304)'))).catch((e: unknown) => e);
    expect((error as OperatorError).message).toMatch(/^\[unavailable\] etcd is up but its answer was larger than a gRPC message may carry \(.*5197776 vs 4194304\)\); lower KEYBRAKE_ETCD_PAGE_SIZE$/);
  });

  it('passes an OperatorError through unchanged', async () => {
    const original = new OperatorError('conflict', 'contended');
    expect(await guard(Promise.reject(original)).catch((e: unknown) => e)).toBe(original);
  });
});
