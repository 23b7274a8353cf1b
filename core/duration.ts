import { invalidField } from './operator-error.js';
import { quote } from './quote.js';

const UNIT_SECONDS = { d: 86_400, h: 3_600, m: 60, s: 1 } as const;
const DURATION_PATTERN = /^(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$/;

/**
 * Parses "4h", "90m", "3600s", "1h30m", "2d" into whole seconds.
 * Units must come in the order d, h, m, s, each at most once, so a string has one reading.
 */
export function parseDurationSeconds(text: string, field: string): number {
  const match = DURATION_PATTERN.exec(text);
  if (text === '' || match === null) {
    throw invalidField(field, `cannot parse duration ${quote(text)} (use e.g. "4h", "90m", "3600s", "1h30m")`);
  }
  const [, d, h, m, s] = match;
  let seconds = 0;
  for (const [digits, unit] of [[d, 'd'], [h, 'h'], [m, 'm'], [s, 's']] as const) {
    if (digits !== undefined) seconds += Number(digits) * UNIT_SECONDS[unit];
  }
  if (!Number.isSafeInteger(seconds)) throw invalidField(field, `duration ${quote(text)} is too long`);
  return seconds;
}
