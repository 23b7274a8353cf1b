/**
 * bench:parse — what reading one hostile request body costs the data plane's CPU, at the largest
 * body each vendor's routes accept (data-plane/pipeline.ts REQUEST_BODY_LIMITS; Resend at the
 * default KEYBRAKE_MAX_BODY_BYTES), for the shapes that cost most per byte: many tiny
 * parameters, deep brackets, percent-encoding, many JSON values. Each figure is the median of
 * several runs of the cost model's estimate (parse, routing check, price), in-process.
 */
import { DEFAULT_PRICE_TABLES, estimateCost, type PricedRequest } from '../core/cost/index.js';
import { REQUEST_BODY_LIMITS } from '../data-plane/pipeline.js';
import { keepRunningWhenOutputCloses } from './support/cleanup.js';

keepRunningWhenOutputCloses();

const FORM = 'application/x-www-form-urlencoded';
const stripeLimit = REQUEST_BODY_LIMITS.stripe!;
const twilioLimit = REQUEST_BODY_LIMITS.twilio!;
const resendLimit = 1024 * 1024;

/** `unit` repeated to fill `limit` bytes after `head`. */
function fill(head: string, unit: (i: number) => string, limit: number, joiner = '&', maxParts = Number.POSITIVE_INFINITY): Buffer {
  const parts: string[] = [head];
  let size = head.length;
  for (let i = 0; size < limit - 64 && i < maxParts; i++) {
    const part = unit(i);
    parts.push(part);
    size += part.length + joiner.length;
  }
  return Buffer.from(parts.join(joiner));
}

const stripe = (segments: string[], body: Buffer): PricedRequest => ({ vendor: 'stripe', method: 'POST', segments, query: '', contentType: FORM, body });
const twilioMessage = (body: Buffer): PricedRequest => ({ vendor: 'twilio', method: 'POST', segments: ['2010-04-01', 'Accounts', `AC${'0'.repeat(32)}`, 'Messages.json'], query: '', contentType: FORM, body });
const resend = (body: Buffer): PricedRequest => ({ vendor: 'resend', method: 'POST', segments: ['emails'], query: '', contentType: 'application/json', body });

const cases: [string, PricedRequest][] = [
  ['stripe: one long value', stripe(['v1', 'payment_intents'], Buffer.from(`amount=100&currency=usd&description=${'a'.repeat(stripeLimit - 64)}`))],
  ['stripe: tiny parameters', stripe(['v1', 'payment_intents'], fill('amount=100&currency=usd', (i) => `metadata[k${i}]=v`, stripeLimit))],
  ['stripe: 3,990 parameters (accepted)', stripe(['v1', 'payment_intents'], fill('amount=100&currency=usd', (i) => `metadata[key_number_${i}]=value_${i}`, stripeLimit, '&', 3990))],
  ['stripe: line items', stripe(['v1', 'checkout', 'sessions'], fill('mode=payment', (i) => `line_items[${i}][price_data][unit_amount]=1&line_items[${i}][price_data][currency]=usd`, stripeLimit))],
  ['stripe: deep brackets', stripe(['v1', 'payment_intents'], fill('amount=100&currency=usd', (i) => `m${i}${'[a]'.repeat(8)}=1`, stripeLimit))],
  ['stripe: percent-encoded', stripe(['v1', 'payment_intents'], Buffer.from(`amount=100&currency=usd&description=${'%41'.repeat((stripeLimit - 64) / 3)}`))],
  ['twilio: tiny parameters', twilioMessage(fill('To=%2B14155550100&Body=hi', (i) => `X${i}=v`, twilioLimit))],
  ['twilio: long body', twilioMessage(Buffer.from(`To=%2B14155550100&Body=${'%E2%82%AC'.repeat(1600)}`))],
  ['resend: many recipients', resend(fill('{"from":"a@b.c","subject":"s","to":["x@y.z"', (i) => `"u${i}@x.io"`, resendLimit, ','))],
  ['resend: 19,990 recipients (accepted)', resend(Buffer.from(`${fill('{"from":"a@b.c","subject":"s","to":["x@y.z"', (i) => `"recipient${i}@example.com"`, resendLimit, ',', 19_990).toString()}]}`))],
  ['resend: one large html', resend(Buffer.from(JSON.stringify({ from: 'a@b.c', to: 'a@x.io', subject: 's', html: 'x'.repeat(resendLimit - 100) })))],
  ['resend: tiny objects', resend(fill('{"from":"a@b.c","to":"a@x.io","x":[{}', () => '{"a":1}', resendLimit, ','))],
];

const key = { perCallEstimateMicros: 0 };
console.log(`bench:parse — one request body's estimate, median of 9 runs (${new Date().toISOString()})`);
console.log('| body | bytes | ms | outcome |');
console.log('| --- | --- | --- | --- |');
for (const [name, request] of cases) {
  const times: number[] = [];
  let outcome = '';
  for (let run = 0; run < 9; run++) {
    const started = performance.now();
    const estimate = estimateCost(request, key, DEFAULT_PRICE_TABLES);
    times.push(performance.now() - started);
    outcome = estimate.kind === 'refused' ? `refused: ${estimate.message.slice(0, 60)}` : estimate.kind;
  }
  times.sort((a, b) => a - b);
  console.log(`| ${name} | ${request.body?.length ?? 0} | ${times[4]!.toFixed(2)} | ${outcome} |`);
}
