import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

import { describe, expect, it } from 'vitest';

import { MAX_CALL_TIME_LIMIT_SECONDS, REFUSED_DESTINATIONS } from '../../../core/cost/price-tables.js';
import { MAX_TWIML_CHARACTERS } from '../../../core/cost/twiml.js';
import { MAX_BODY_CHARACTERS, MAX_MEDIA_PER_MESSAGE, MMS_LINK_CHARACTERS } from '../../../core/cost/twilio.js';
import { describeTwilioRule, TWILIO_ROUTES } from '../../../core/cost/twilio-routes.js';

const DOC = readFileSync(fileURLToPath(new URL('../../../docs/pricing.md', import.meta.url)), 'utf8');

/** The rows of the Markdown table whose header row is `header`, cells trimmed, `\|` unescaped and code spans unwrapped. */
function table(header: string): string[][] {
  const lines = DOC.split('\n');
  const start = lines.indexOf(header);
  expect(start, `docs/pricing.md has no table headed ${header}`).toBeGreaterThanOrEqual(0);
  const rows: string[][] = [];
  for (const line of lines.slice(start + 2)) {
    if (!line.startsWith('|')) break;
    const cells = line
      .slice(1, -1)
      .split(/(?<!\\)\|/)
      .map((cell) => cell.trim().replace(/\\\|/g, '|').replace(/^`(.*)`$/, '$1'));
    rows.push(cells);
  }
  return rows;
}

describe('docs/pricing.md', () => {
  it('lists every Twilio route, in the order of the code, priced as the code prices it', () => {
    const documented = table('| method | path | pricing |');
    const code = TWILIO_ROUTES.map((route) => [route.method, `/2010-04-01/${route.path}`, describeTwilioRule(route.rule)]);
    expect(documented).toEqual(code);
  });

  it('counts the routes as the code has them', () => {
    const post = TWILIO_ROUTES.filter((route) => route.method === 'POST');
    const count = (kind: string) => post.filter((route) => route.rule.kind === kind).length;
    const priced = post.length - count('free') - count('free-if') - count('per-call-estimate');
    const deletes = TWILIO_ROUTES.length - post.length;
    expect(TWILIO_ROUTES.filter((route) => route.method === 'DELETE').every((route) => route.rule.kind === 'free')).toBe(true);
    expect(DOC).toContain(`Counts: ${TWILIO_ROUTES.length} routes (${post.length} POST, ${deletes} DELETE). Priced from the request: ${priced}. Free: ${count('free')} POST and all ${deletes}`);
    expect(DOC).toContain(`Free if only a\nstop, hang-up or rename: ${count('free-if')}. Per-call estimate: ${count('per-call-estimate')}.`);
  });

  it('lists the refused destinations of the default tables', () => {
    expect(table('| prefix | destination |')).toEqual(REFUSED_DESTINATIONS.map(({ prefix, what }) => [`+${prefix}`, what]));
  });

  it('states the constants the code uses', () => {
    expect(table('| constant | value |')).toEqual([
      ['MMS_LINK_CHARACTERS', String(MMS_LINK_CHARACTERS)],
      ['MAX_MEDIA_PER_MESSAGE', String(MAX_MEDIA_PER_MESSAGE)],
      ['MAX_BODY_CHARACTERS', String(MAX_BODY_CHARACTERS)],
      ['MAX_TWIML_CHARACTERS', String(MAX_TWIML_CHARACTERS)],
      ['MAX_CALL_TIME_LIMIT_SECONDS', String(MAX_CALL_TIME_LIMIT_SECONDS)],
    ]);
  });
});
