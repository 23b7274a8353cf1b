import { OperatorError } from '../core/operator-error.js';

/**
 * etcd being unreachable is the caller's 503 (`unavailable`), not a 500 with a stack trace. An
 * answer larger than a gRPC message may carry comes from an etcd that is up: said as such, not
 * as etcd being unreachable (every read is paged, so it should not happen; if it does, it
 * names the limit).
 */
export async function guard<T>(operation: Promise<T>): Promise<T> {
  try {
    return await operation;
  } catch (error) {
    if (error instanceof OperatorError) throw error;
    const message = error instanceof Error ? error.message : String(error);
    if (/RESOURCE_EXHAUSTED|larger than max/.test(message)) {
      throw new OperatorError('unavailable', `etcd is up but its answer was larger than a gRPC message may carry (${message}); lower KEYBRAKE_ETCD_PAGE_SIZE`, { cause: error });
    }
    throw new OperatorError('unavailable', `etcd: ${message}`, { cause: error });
  }
}
