import fc from 'fast-check';
import { describe, expect, it } from 'vitest';

import { CostRefusal } from '../../../core/cost/refusal.js';
import { MAX_JSON_VALUES, parseStrictJson } from '../../../core/cost/strict-json.js';

const parse = (text: string) => parseStrictJson(Buffer.from(text, 'utf8'), 'the body');

function refusal(text: string): CostRefusal {
  try {
    parse(text);
  } catch (error) {
    if (error instanceof CostRefusal) return error;
    throw error;
  }
  throw new Error(`expected ${text} to be refused`);
}

describe('parseStrictJson', () => {
  it.each(['null', 'true', 'false', '0', '-1.5e3', '"x\\u00e9\\n"', '[]', '{}', ' [1, {"a": [true, null]}] ', '{"a":{"a":1}}', '"😀"'])('reads %s like JSON.parse', (text) => {
    expect(parse(text)).toEqual(JSON.parse(text));
  });

  it('property: reads any JSON.stringify output like JSON.parse', () => {
    fc.assert(
      fc.property(fc.jsonValue({ maxDepth: 6 }), (value) => {
        const text = JSON.stringify(value);
        expect(parse(text)).toEqual(JSON.parse(text));
      }),
    );
  });

  it('property: refuses exactly what JSON.parse refuses, or a repeated key', () => {
    fc.assert(
      fc.property(fc.string({ unit: fc.constantFrom('{', '}', '[', ']', '"', ':', ',', '1', '-', '.', 'e', 'a', 't', 'n', ' ', '\\', 'u'), maxLength: 20 }), (text) => {
        let expected: unknown;
        let valid = true;
        try {
          expected = JSON.parse(text);
        } catch {
          valid = false;
        }
        let actual: unknown;
        let refused = false;
        try {
          actual = parse(text);
        } catch (error) {
          expect(error).toBeInstanceOf(CostRefusal);
          refused = true;
        }
        if (!valid) expect(refused).toBe(true);
        else if (!refused) expect(actual).toEqual(expected);
        else expect(refusal(text).message).toMatch(/more than once|nested deeper/);
      }),
      { numRuns: 5_000 },
    );
  });

  it('builds objects without a prototype, so __proto__ is an ordinary key', () => {
    const value = parse('{"__proto__": {"polluted": true}}') as Record<string, unknown>;
    expect(Object.getPrototypeOf(value)).toBeNull();
    expect(Object.keys(value)).toEqual(['__proto__']);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  it.each<[string, RegExp]>([
    ['{"a":1,"a":2}', /gives the property "a" more than once/],
    ['{"a":1,"\\u0061":2}', /gives the property "a" more than once/],
    ['[{"to":1},{"x":{"to":1,"to":2}}]', /"to" more than once/],
    ['', /unexpected end/],
    ['{', /expected a property name/],
    ['{"a" 1}', /expected ":"/],
    ['[1,]', /unexpected "]"/],
    ['[1 2]', /expected ","/],
    ['"abc', /unterminated string/],
    ['"a\tb"', /malformed string/],
    ['"\\x"', /malformed string/],
    ['01', /unexpected text after/],
    ['NaN', /unexpected "N"/],
    ['{"a":1} {}', /unexpected text after/],
    [`${'['.repeat(70)}${']'.repeat(70)}`, /nested deeper than 64 levels/],
  ])('refuses %j', (text, message) => {
    const error = refusal(text);
    expect(error.code).toBe('request_malformed');
    expect(error.message).toMatch(message);
  });

  it('refuses invalid UTF-8', () => {
    expect(() => parseStrictJson(Buffer.from([0x22, 0xc3, 0x22]), 'the body')).toThrow(/not valid UTF-8/);
  });
});

describe('what reading one document may cost', () => {
  it(`refuses more than ${MAX_JSON_VALUES} values, however small each is`, () => {
    const values = (n: number) => Buffer.from(`[${Array.from({ length: n - 1 }, () => '{}').join(',')}]`);
    expect(parseStrictJson(values(MAX_JSON_VALUES), 'body')).toHaveLength(MAX_JSON_VALUES - 1);
    expect(() => parseStrictJson(values(MAX_JSON_VALUES + 1), 'body')).toThrow(/more than 20000 values/);
  });
});
