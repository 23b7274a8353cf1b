/**
 * The one error type of the data plane's boundary. Each code is what the `Keybrake-Error`
 * header carries; the vendor adapter renders it in the vendor's own error shape so that the
 * official SDKs raise their usual exception and do not retry what cannot succeed.
 */
export const PROXY_ERROR_STATUS = {
  vault_key_invalid: 401,
  vault_key_expired: 401,
  vault_key_revoked: 401,
  endpoint_not_allowed: 403,
  amount_exceeds_key_limit: 402,
  spend_cap_exceeded: 429,
  request_malformed: 400,
  request_timeout: 408,
  payload_too_large: 413,
  headers_too_large: 431,
  upstream_unreachable: 502,
  upstream_answer_withheld: 502,
  control_plane_unavailable: 503,
  vendor_not_configured: 503,
  audit_unavailable: 503,
  upstream_timeout: 504,
  internal_error: 500,
} as const;

export type ProxyErrorCode = keyof typeof PROXY_ERROR_STATUS;

export class ProxyError extends Error {
  override readonly name = 'ProxyError';
  readonly code: ProxyErrorCode;
  readonly rawMessage: string;
  /** Seconds until retrying can help (a daily cap's next window), for Retry-After. */
  readonly retryAfterSeconds: number | undefined;
  /** For upstream failures: true when the request certainly never reached the vendor. */
  readonly notSent: boolean;
  /** The known vault key a refusal concerns (revoked, expired, another vendor's), for its audit record. */
  readonly subject: { readonly id: string; readonly label: string } | undefined;

  constructor(
    code: ProxyErrorCode,
    rawMessage: string,
    options?: { cause?: unknown; retryAfterSeconds?: number; notSent?: boolean; subject?: { readonly id: string; readonly label: string } },
  ) {
    super(`[${code}] ${rawMessage}`, options);
    this.code = code;
    this.rawMessage = rawMessage;
    this.retryAfterSeconds = options?.retryAfterSeconds;
    this.notSent = options?.notSent ?? false;
    this.subject = options?.subject;
  }

  get status(): number {
    return PROXY_ERROR_STATUS[this.code];
  }

  static from(reason: unknown): ProxyError {
    if (reason instanceof ProxyError) return reason;
    return new ProxyError('internal_error', 'Keybrake data plane internal error; nothing was forwarded', { cause: reason });
  }
}

export function malformed(message: string): ProxyError {
  return new ProxyError('request_malformed', message);
}
