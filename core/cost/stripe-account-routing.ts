/**
 * Connect routing in the parameters. A vault key acts for the platform's own Stripe account: the
 * proxy refuses the `Stripe-Account` and `Stripe-Context` headers, and the same money could
 * otherwise be sent to a connected account by a parameter. Refused, on every v1 call that is not
 * a read (free calls included: a parameter Stripe rejects on one endpoint today may be accepted
 * there tomorrow), in the body and in the query, at any depth:
 *
 * - `on_behalf_of`: the payment settles as the connected account's (its bank, its statement);
 * - `transfer_data`: sends the payment, or a part of it, on to a connected account (`[destination]`)
 *   or resizes that transfer (`[amount]` on a capture, an update, an incremental authorization);
 * - `destination`: a legacy charge's destination (`destination=acct_…`, `destination[account]`);
 * - `issuer[account]`, `liability[account]`: an invoice issued by, or tax owed by, a connected
 *   account: acting as it, which the `Stripe-Account` header would otherwise be needed for.
 *
 * Nested forms are the same parameters: `payment_intent_data[transfer_data][destination]`,
 * `subscription_data[on_behalf_of]`, `invoice_creation[invoice_data][issuer][account]`,
 * `phases[0][transfer_data]`, …. An empty value is Stripe's "unset": it routes nothing.
 *
 * Not refused: `transfer_group` (a label on a payment; only a transfer, itself allowlisted and
 * priced, moves money to an account), `application_fee_amount`/`application_fee_percent` (money
 * the platform keeps from a connected account's payment, which needs one of the above or the
 * header to exist), and Treasury's `destination_payment_method` (an outbound payment's whole
 * purpose, priced). Exempt: `destination` on POST /v1/transfers (the transfer's whole purpose:
 * its allowlist entry is the permission) and on POST /v1/payouts (an external account of the
 * platform's own: without the header Stripe pays out to no one else). Metadata is the caller's
 * own vocabulary and is never read.
 */
import type { FormMap } from './form-body.js';
import { accountRouting } from './refusal.js';
import { quote } from '../quote.js';

/** Parameter names that route money to, or act as, a connected account, and why. */
const ROUTING_PARAMS: ReadonlyMap<string, string> = new Map([
  ['on_behalf_of', 'settles the payment as a connected account'],
  ['transfer_data', 'sends money on to a connected account'],
  ['destination', 'sends the payment to a connected account'],
]);

/** `account` inside these objects names a connected account to act as. */
const ACTING_AS_PARENTS: ReadonlyMap<string, string> = new Map([
  ['issuer', 'issues the invoice as a connected account'],
  ['liability', 'makes a connected account liable for the tax'],
]);

/** Routes whose top-level `destination` is their purpose, permitted by the allowlist entry. */
const DESTINATION_IS_THE_PURPOSE: ReadonlySet<string> = new Set(['POST /v1/transfers', 'POST /v1/payouts']);

interface Visit {
  readonly map: FormMap;
  /** The parameter this map is the value of (a linked path, so a deep key costs no copies); null at the top. */
  readonly at: ParamPath | null;
}

interface ParamPath {
  readonly name: string;
  readonly parent: ParamPath | null;
}

function describe(path: ParamPath): string {
  const names: string[] = [];
  for (let at: ParamPath | null = path; at !== null; at = at.parent) names.push(at.name);
  names.reverse();
  return names.map((name, i) => (i === 0 ? name : `[${name}]`)).join('');
}

function whyRouting(name: string, parent: ParamPath | null, route: string | undefined): string | undefined {
  if (name === 'destination' && parent === null && route !== undefined && DESTINATION_IS_THE_PURPOSE.has(route)) return undefined;
  if (name === 'account' && parent !== null) return ACTING_AS_PARENTS.get(parent.name);
  return ROUTING_PARAMS.get(name);
}

/**
 * Throws an `account_routing` refusal naming the first routing parameter in `params`. `route` is
 * the matched route ('POST /v1/transfers'), undefined for a call on no list. Walks the tree
 * without recursion: a key may nest thousands of brackets deep.
 */
export function refuseAccountRouting(params: FormMap, route: string | undefined): void {
  const pending: Visit[] = [{ map: params, at: null }];
  for (let visit = pending.pop(); visit !== undefined; visit = pending.pop()) {
    for (const [name, node] of visit.map) {
      if (name === 'metadata') continue;
      const why = node === '' ? undefined : whyRouting(name, visit.at, route);
      if (why !== undefined) {
        throw accountRouting(`parameter ${quote(describe({ name, parent: visit.at }))} ${why}; a vault key may not route money to or act as a connected account`);
      }
      if (typeof node !== 'string') pending.push({ map: node, at: { name, parent: visit.at } });
    }
  }
}
