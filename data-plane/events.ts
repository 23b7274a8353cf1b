/**
 * Named diagnostics channels: the proxy publishes what happened, observers (metrics, and later
 * audit) subscribe. Nothing on the request path logs or counts directly.
 */
import diagnostics from 'node:diagnostics_channel';

import type { Vendor } from '../core/vendors.js';
import type { ProxyErrorCode } from './proxy-error.js';

export interface ProxiedCallEvent {
  readonly vendor: Vendor;
  readonly decision: 'allowed' | 'denied';
  /** The Keybrake-Error code of a denial. */
  readonly code: ProxyErrorCode | null;
  readonly status: number;
  readonly durationMs: number;
}

export const proxiedCallChannel = diagnostics.channel('keybrake:data-plane:call');

export function publishCall(event: ProxiedCallEvent): void {
  if (proxiedCallChannel.hasSubscribers) proxiedCallChannel.publish(event);
}
