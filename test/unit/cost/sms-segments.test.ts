import fc from 'fast-check';
import { describe, expect, it } from 'vitest';

import { countSegments, isGsm7 } from '../../../core/cost/sms-segments.js';
import { countSegments as simulatorCount } from '../../simulators/sms-segments.js';

const EMOJI = '😀'; // two UTF-16 code units

describe('countSegments', () => {
  it.each<[string, string, number, 'GSM-7' | 'UCS-2', number]>([
    ['empty', '', 1, 'GSM-7', 0],
    ['1 char', 'a', 1, 'GSM-7', 1],
    ['160 GSM-7 chars', 'a'.repeat(160), 1, 'GSM-7', 160],
    ['161 GSM-7 chars', 'a'.repeat(161), 2, 'GSM-7', 161],
    ['306 = 153 × 2 GSM-7 chars', 'a'.repeat(306), 2, 'GSM-7', 306],
    ['307 GSM-7 chars', 'a'.repeat(307), 3, 'GSM-7', 307],
    ['1,600 GSM-7 chars', 'a'.repeat(1600), 11, 'GSM-7', 1600],
    ['70 UCS-2 units', 'ж'.repeat(70), 1, 'UCS-2', 70],
    ['71 UCS-2 units', 'ж'.repeat(71), 2, 'UCS-2', 71],
    ['134 = 67 × 2 UCS-2 units', 'ж'.repeat(134), 2, 'UCS-2', 134],
    ['135 UCS-2 units', 'ж'.repeat(135), 3, 'UCS-2', 135],
    ['one non-GSM char makes it all UCS-2', `${'a'.repeat(69)}ж`, 1, 'UCS-2', 70],
    ['one non-GSM char in 71', `${'a'.repeat(70)}ж`, 2, 'UCS-2', 71],
    ['GSM-7 accented letters stay GSM-7', 'éèùìòÇÅåäöñüà'.repeat(10), 1, 'GSM-7', 130],
    ['80 euro signs = 160 septets', '€'.repeat(80), 1, 'GSM-7', 160],
    ['81 euro signs = 162 septets', '€'.repeat(81), 2, 'GSM-7', 162],
    ['159 chars + one extension char = 161 septets', `${'a'.repeat(159)}^`, 2, 'GSM-7', 161],
    ['158 chars + one extension char = 160 septets', `${'a'.repeat(158)}{`, 1, 'GSM-7', 160],
    // 152 septets then an escape pair: it does not fit the 153rd slot and opens segment 2.
    ['an extension char never splits across segments', `${'a'.repeat(152)}]${'a'.repeat(152)}`, 3, 'GSM-7', 306],
    ['every extension char counts 2', '^{}\\[~]|€\f', 1, 'GSM-7', 20],
    ['35 emoji = 70 units', EMOJI.repeat(35), 1, 'UCS-2', 70],
    ['36 emoji = 72 units', EMOJI.repeat(36), 2, 'UCS-2', 72],
    // 33 emoji fill 66 of 67 units: a pair is never split, so 67 emoji take 3 segments.
    ['67 emoji = 134 units, but pairs are not split', EMOJI.repeat(67), 3, 'UCS-2', 134],
    ['66 emoji = 132 units', EMOJI.repeat(66), 2, 'UCS-2', 132],
  ])('%s', (_name, body, segments, encoding, units) => {
    expect(countSegments(body)).toEqual({ segments, encoding, units });
  });

  it('treats the GSM-7 basic set and extension table as GSM-7, and nothing else', () => {
    expect(isGsm7('@£$¥\n\rΔ_ΦΓΛΩΠΨΣΘΞ¿§¡¤')).toBe(true);
    expect(isGsm7('^{}\\[~]|€')).toBe(true);
    expect(isGsm7('`')).toBe(false);
    expect(isGsm7('ç')).toBe(false); // only capital Ç is in GSM-7
    expect(isGsm7('\t')).toBe(false);
  });

  it('property: agrees with the test simulators\' counter (cut at the byte level, written apart) on any text', () => {
    const text = fc.string({ unit: fc.constantFrom('a', 'Z', ' ', '€', '^', '{', 'é', 'ж', EMOJI, '\n', '`'), maxLength: 400 });
    // Right around the segment boundaries (k × 153 septets, k × 67 units), where counters differ.
    const nearBoundary = fc
      .record({
        k: fc.integer({ min: 1, max: 4 }),
        delta: fc.integer({ min: -3, max: 3 }),
        filler: fc.constantFrom('a', 'ж', EMOJI),
        inserts: fc.array(fc.record({ at: fc.nat(700), char: fc.constantFrom('€', '^', '~', EMOJI, 'ж') }), { maxLength: 3 }),
      })
      .map(({ k, delta, filler, inserts }) => {
        const units = k * (filler === 'a' ? 153 : 67) + delta;
        let body = filler.repeat(Math.max(0, filler === EMOJI ? Math.floor(units / 2) : units));
        for (const { at, char } of inserts) body = `${body.slice(0, at % (body.length + 1))}${char}${body.slice(at % (body.length + 1))}`;
        return body;
      });
    fc.assert(
      fc.property(fc.oneof(text, nearBoundary, fc.string({ unit: 'grapheme', maxLength: 200 })), (body) => {
        expect(countSegments(body)).toEqual(simulatorCount(body));
      }),
      { numRuns: 2000 },
    );
  });

  it('property: for GSM-7 text, appending never lowers the segment count', () => {
    const gsm = fc.string({ unit: fc.constantFrom('a', 'b', ' ', '.', '€', '^', '~', '\\', 'é', 'Δ', '\n'), maxLength: 1600 });
    fc.assert(
      fc.property(gsm, fc.nat({ max: 1600 }), (body, cut) => {
        const chars = [...body];
        const prefix = chars.slice(0, Math.min(cut, chars.length)).join('');
        expect(countSegments(prefix).segments).toBeLessThanOrEqual(countSegments(body).segments);
      }),
    );
  });

  it('property: the GSM-7 segment count is monotonic in length', () => {
    let previous = 0;
    for (let length = 0; length <= 1600; length += 1) {
      const { segments } = countSegments('a'.repeat(length));
      expect(segments).toBeGreaterThanOrEqual(previous);
      previous = segments;
    }
  });
});
