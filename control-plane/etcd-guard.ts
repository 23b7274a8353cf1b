import { OperatorError } from '../core/operator-error.js';

/** etcd being unreachable is the caller's 503 (`unavailable`), not a 500 with a stack trace. */
export async function guard<T>(operation: Promise<T>): Promise<T> {
  try {
    return await operation;
  } catch (error) {
    if (error instanceof OperatorError) throw error;
    throw new OperatorError('unavailable', `etcd: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
  }
}
