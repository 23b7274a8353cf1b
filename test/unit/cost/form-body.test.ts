import { describe, expect, it } from 'vitest';

import { MAX_FORM_DEPTH, MAX_FORM_KEY_LENGTH, MAX_FORM_PARAMETERS, listAt, mapAt, mediaType, parseBracketForm, readFormPairs, scalarAt, singleParam, splitBracketKey, type FormMap, type FormNode } from '../../../core/cost/form-body.js';
import { CostRefusal } from '../../../core/cost/refusal.js';
import type { PricedRequest } from '../../../core/cost/types.js';
import { stripePost } from './helpers.js';

function refusalOf(run: () => unknown): CostRefusal {
  try {
    run();
  } catch (error) {
    if (error instanceof CostRefusal) return error;
    throw error;
  }
  throw new Error('expected a refusal');
}

/** Maps to plain objects, for readable expectations. */
function plain(node: FormNode): unknown {
  return typeof node === 'string' ? node : Object.fromEntries([...node].map(([k, v]) => [k, plain(v)]));
}

const parse = (body: string, query = ''): FormMap => parseBracketForm(readFormPairs(stripePost('/v1/charges', body, { query })));

describe('readFormPairs', () => {
  it('decodes keys and values, + as space, and skips empty pairs', () => {
    const pairs = readFormPairs(stripePost('/v1/charges', 'a=1&&b=x+y%20z&c&d=%E2%82%AC'));
    expect(pairs).toEqual([
      { key: 'a', value: '1' },
      { key: 'b', value: 'x y z' },
      { key: 'c', value: '' },
      { key: 'd', value: '€' },
    ]);
  });

  it('reads the query before the body', () => {
    expect(readFormPairs(stripePost('/v1/charges', 'b=2', { query: 'a=1' }))).toEqual([
      { key: 'a', value: '1' },
      { key: 'b', value: '2' },
    ]);
  });

  it('reads a body without Content-Type as a form (as Rack does), and ignores any type for an empty body', () => {
    const untyped: PricedRequest = { ...stripePost('/v1/charges', 'a=1'), contentType: undefined };
    expect(readFormPairs(untyped)).toEqual([{ key: 'a', value: '1' }]);
    expect(readFormPairs({ ...stripePost('/v1/charges', ''), contentType: 'application/json' })).toEqual([]);
    expect(readFormPairs(stripePost('/v1/charges', 'a=1', { contentType: 'application/x-www-form-urlencoded; charset=utf-8' }))).toHaveLength(1);
    expect(readFormPairs(stripePost('/v1/charges', 'a=1', { contentType: 'Application/X-WWW-Form-Urlencoded' }))).toHaveLength(1);
  });

  it.each<[string, PricedRequest, RegExp]>([
    ['a JSON body', stripePost('/v1/charges', '{"amount":1}', { contentType: 'application/json' }), /expected an application\/x-www-form-urlencoded body/],
    ['a multipart body', stripePost('/v1/charges', 'x', { contentType: 'multipart/form-data; boundary=x' }), /expected an application/],
    ['a raw ";" (Rack splits on it)', stripePost('/v1/charges', 'description=a;amount=1'), /raw ";"/],
    ['a raw ";" in the query', stripePost('/v1/charges', null, { query: 'a=1;amount=2' }), /query contains a raw ";"/],
    ['a raw space', stripePost('/v1/charges', 'a=1& amount=2'), /raw bytes/],
    ['a raw newline', stripePost('/v1/charges', 'amount=1\n'), /raw bytes/],
    ['raw UTF-8', stripePost('/v1/charges', 'description=€'), /raw bytes/],
    ['a raw non-ASCII query', stripePost('/v1/charges', null, { query: 'description=Ł' }), /query has raw characters/],
    ['a raw space in the query', stripePost('/v1/charges', null, { query: 'a=1& amount=2' }), /query has raw characters/],
    ['a malformed percent-encoding', stripePost('/v1/charges', 'amount=%3'), /malformed percent-encoding/],
    ['percent-encoded invalid UTF-8', stripePost('/v1/charges', 'description=%FF'), /invalid UTF-8/],
  ])('refuses %s', (_name, request, message) => {
    const error = refusalOf(() => readFormPairs(request));
    expect(error.code).toBe('request_malformed');
    expect(error.message).toMatch(message);
  });
});

describe('mediaType', () => {
  it.each([
    [undefined, ''],
    ['application/x-www-form-urlencoded', 'application/x-www-form-urlencoded'],
    [' Application/JSON ; charset=utf-8', 'application/json'],
  ])('%j → %j', (contentType, type) => {
    expect(mediaType(contentType)).toBe(type);
  });
});

describe('splitBracketKey', () => {
  it.each<[string, string[] | null]>([
    ['amount', ['amount']],
    ['metadata[k]', ['metadata', 'k']],
    ['line_items[0][price_data][unit_amount]', ['line_items', '0', 'price_data', 'unit_amount']],
    ['expand[]', ['expand', '']],
    ['a b', ['a b']],
    ['[amount]', null],
    ['amount]', null],
    ['amount[', null],
    ['a[b]c', null],
    ['a[[b]]', null],
    ['', null],
  ])('%j → %j', (key, path) => {
    expect(splitBracketKey(key)).toEqual(path);
  });
});

describe('parseBracketForm', () => {
  it('nests literal brackets as stripe-node and stripe-python send them', () => {
    const params = parse(
      'amount=500&currency=usd&metadata[order]=42&payment_method_types[0]=card&line_items[0][price_data][unit_amount]=500&line_items[0][quantity]=2&expand[]=a&expand[]=b',
    );
    expect(plain(params)).toEqual({
      amount: '500',
      currency: 'usd',
      metadata: { order: '42' },
      payment_method_types: { '0': 'card' },
      line_items: { '0': { price_data: { unit_amount: '500' }, quantity: '2' } },
      expand: { '0': 'a', '1': 'b' },
    });
  });

  it('decodes percent-encoded brackets before splitting, as the vendor does', () => {
    expect(scalarAt(parse('line_items%5B0%5D%5Bquantity%5D=3'), ['line_items', '0', 'quantity'])).toBe('3');
  });

  it('keeps __proto__ and friends as ordinary keys', () => {
    const params = parse('metadata[__proto__]=x&constructor=y');
    expect(scalarAt(params, ['metadata', '__proto__'])).toBe('x');
    expect(scalarAt(params, ['constructor'])).toBe('y');
    expect(({} as Record<string, unknown>).x).toBeUndefined();
  });

  it.each<[string, string, RegExp]>([
    ['a repeated scalar', 'amount=1&amount=2', /"amount" is given more than once/],
    ['a repeated scalar across query and body', 'amount=2', /"amount" is given more than once/],
    ['a repeated nested key', 'line_items[0][quantity]=1&line_items[0][quantity]=9', /line_items\[0\]\[quantity\]" is given more than once/],
    ['a value and an object under one name', 'amount=1&amount[x]=2', /"amount" is given both as a value and as an object/],
    ['an object and then a value', 'amount[x]=2&amount=1', /"amount" is given more than once \(or as both a value and an object\)/],
    ['an index and an append colliding', 'x[0]=a&x[]=b&x[1]=c', /"x\[1\]" is given more than once/],
    ['"[]" before more brackets', 'line_items[][price]=p_1', /"\[\]" is only accepted as the last bracket/],
    ['stray brackets', 'amount]=1', /stray brackets/],
    ['a leading bracket', '[amount]=1', /stray brackets/],
  ])('refuses %s', (name, body, message) => {
    const query = name.includes('across') ? 'amount=1' : '';
    const error = refusalOf(() => parse(body, query));
    expect(error.code).toBe('request_malformed');
    expect(error.message).toMatch(message);
  });
});

describe('accessors', () => {
  const params = parse('amount=5&line_items[1][price]=b&line_items[0][price]=a&line_items[10][price]=c&metadata[k]=v&list=');

  it('scalarAt reads values and refuses objects', () => {
    expect(scalarAt(params, ['amount'])).toBe('5');
    expect(scalarAt(params, ['missing'])).toBeUndefined();
    expect(scalarAt(params, ['metadata', 'missing'])).toBeUndefined();
    expect(refusalOf(() => scalarAt(params, ['metadata'])).message).toMatch(/metadata must be a single value/);
    expect(refusalOf(() => scalarAt(params, ['amount', 'x'])).message).toMatch(/amount must be an object/);
  });

  it('mapAt reads objects and refuses values', () => {
    expect(mapAt(params, ['metadata'])?.get('k')).toBe('v');
    expect(mapAt(params, ['missing'])).toBeUndefined();
    expect(refusalOf(() => mapAt(params, ['amount'])).message).toMatch(/amount must be an object or a list/);
  });

  it('listAt orders items by index', () => {
    expect(listAt(params, 'line_items').map(({ index, item }) => [index, item.get('price')])).toEqual([
      ['0', 'a'],
      ['1', 'b'],
      ['10', 'c'],
    ]);
    expect(listAt(params, 'missing')).toEqual([]);
    expect(refusalOf(() => listAt(params, 'list')).message).toMatch(/must be an object or a list/);
  });

  it.each([
    ['line_items[a][price]=x', /list items are indexed/],
    ['line_items[01][price]=x', /without leading zeros/],
    ['line_items[0]=x', /line_items\[0\] must be an object/],
  ])('listAt refuses %j', (body, message) => {
    expect(refusalOf(() => listAt(parse(body), 'line_items')).message).toMatch(message);
  });
});

describe('singleParam', () => {
  const pairs = readFormPairs(stripePost('/x', 'To=%2B1&MediaUrl=a&MediaUrl=b&body=hi'));

  it('finds one parameter case-insensitively', () => {
    expect(singleParam(pairs, 'To')).toBe('+1');
    expect(singleParam(pairs, 'Body')).toBe('hi');
    expect(singleParam(pairs, 'From')).toBeUndefined();
  });

  it('refuses a parameter given twice, whatever the case', () => {
    expect(refusalOf(() => singleParam(pairs, 'MediaUrl')).message).toBe('parameter MediaUrl is given 2 times; it must be given once');
    const mixed = readFormPairs(stripePost('/x', 'To=%2B1&to=%2B44'));
    expect(refusalOf(() => singleParam(mixed, 'To')).code).toBe('request_malformed');
  });
});

describe('bounds: what reading one form may cost', () => {
  it(`refuses more than ${MAX_FORM_PARAMETERS} parameters, counting the query's and the body's together`, () => {
    const many = (n: number) => Array.from({ length: n }, (_, i) => `metadata[k${i}]=v`).join('&');
    expect(readFormPairs(stripePost('/v1/charges', many(MAX_FORM_PARAMETERS)))).toHaveLength(MAX_FORM_PARAMETERS);
    expect(refusalOf(() => readFormPairs(stripePost('/v1/charges', many(MAX_FORM_PARAMETERS + 1)))).message).toMatch(/more than 4000 parameters/);
    expect(refusalOf(() => readFormPairs(stripePost('/v1/charges', many(MAX_FORM_PARAMETERS), { query: 'expand[]=x' }))).message).toMatch(/query and form body/);
  });

  it(`refuses a parameter name longer than ${MAX_FORM_KEY_LENGTH} characters, quoting only its start`, () => {
    const refusal = refusalOf(() => readFormPairs(stripePost('/v1/charges', `${'k'.repeat(800_000)}=1`)));
    expect(refusal.message).toMatch(/longer than 500 characters/);
    expect(refusal.message.length).toBeLessThan(200);
    expect(readFormPairs(stripePost('/v1/charges', `${'k'.repeat(MAX_FORM_KEY_LENGTH)}=1`))).toHaveLength(1);
  });

  it(`refuses brackets nested deeper than ${MAX_FORM_DEPTH}`, () => {
    expect(splitBracketKey(`a${'[b]'.repeat(MAX_FORM_DEPTH)}`)).toHaveLength(MAX_FORM_DEPTH + 1);
    expect(refusalOf(() => splitBracketKey(`a${'[b]'.repeat(MAX_FORM_DEPTH + 1)}`)).message).toMatch(/nested deeper than 8 levels/);
  });
});
