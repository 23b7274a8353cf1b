/**
 * The one error type of the operator boundary (gRPC OperatorService, HTTP admin API, CLI).
 * The set of codes is closed; each maps to one HTTP status and one gRPC status.
 */
export const OPERATOR_ERROR_CODES = {
  malformed_request: { http: 400, grpc: 3 /* INVALID_ARGUMENT */ },
  invalid_argument: { http: 422, grpc: 3 /* INVALID_ARGUMENT */ },
  unauthenticated: { http: 401, grpc: 16 /* UNAUTHENTICATED */ },
  permission_denied: { http: 403, grpc: 7 /* PERMISSION_DENIED */ },
  not_found: { http: 404, grpc: 5 /* NOT_FOUND */ },
  conflict: { http: 409, grpc: 10 /* ABORTED */ },
  payload_too_large: { http: 413, grpc: 8 /* RESOURCE_EXHAUSTED */ },
  unimplemented: { http: 501, grpc: 12 /* UNIMPLEMENTED */ },
  unavailable: { http: 503, grpc: 14 /* UNAVAILABLE */ },
  internal: { http: 500, grpc: 13 /* INTERNAL */ },
} as const;

export type OperatorErrorCode = keyof typeof OPERATOR_ERROR_CODES;

export class OperatorError extends Error {
  override readonly name = 'OperatorError';
  readonly code: OperatorErrorCode;
  /** The message without the code prefix: what the JSON and gRPC answers carry. */
  readonly rawMessage: string;

  constructor(code: OperatorErrorCode, rawMessage: string, options?: { cause?: unknown }) {
    // The code leads the message so one log line says what went wrong.
    super(`[${code}] ${rawMessage}`, options);
    this.code = code;
    this.rawMessage = rawMessage;
  }

  get httpStatus(): number {
    return OPERATOR_ERROR_CODES[this.code].http;
  }

  get grpcStatus(): number {
    return OPERATOR_ERROR_CODES[this.code].grpc;
  }

  /** Turns anything thrown into an OperatorError, keeping the original as `cause`. */
  static from(reason: unknown): OperatorError {
    if (reason instanceof OperatorError) return reason;
    return new OperatorError('internal', 'internal error', { cause: reason });
  }
}

/** Shorthand for the most common error: a named field with what is wrong with it. */
export function invalidField(field: string, problem: string): OperatorError {
  return new OperatorError('invalid_argument', `${field}: ${problem}`);
}
