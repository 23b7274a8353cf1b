import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { describe, expect, it } from 'vitest';

import { matchTwilioRoute, TWILIO_ROUTES } from '../../../core/cost/twilio-routes.js';

const V2010 = fileURLToPath(new URL('../../../node_modules/twilio/lib/rest/api/v2010', import.meta.url));

/**
 * Every POST and DELETE twilio-node 6 sends to the 2010-04-01 API, as `METHOD path` with `*` for
 * each path parameter: each resource's `_uri` template, then the methods its requests use.
 */
function sdkRoutes(): Set<string> {
  const routes = new Set<string>();
  const walk = (dir: string): void => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) {
        walk(path);
        continue;
      }
      if (!entry.name.endsWith('.js')) continue;
      let uri: string | null = null;
      for (const line of readFileSync(path, 'utf8').split('\n')) {
        const template = /_uri = `([^`]*)`/.exec(line);
        if (template !== null) uri = (template[1] ?? '').replace(/\$\{[^}]*\}/g, '*').replace(/^\//, '');
        const method = /method: "(post|delete)"/.exec(line);
        if (method !== null && uri !== null) routes.add(`${(method[1] ?? '').toUpperCase()} ${uri}`);
      }
    }
  };
  walk(V2010);
  return routes;
}

describe('TWILIO_ROUTES', () => {
  it("lists exactly the POST and DELETE routes of twilio-node's 2010-04-01 API", () => {
    const sdk = sdkRoutes();
    // Guard against the extraction silently finding nothing.
    expect(sdk.size).toBeGreaterThan(90);
    const ours = new Set(TWILIO_ROUTES.map((route) => `${route.method} ${route.path}`));
    expect([...sdk].filter((route) => !ours.has(route)).sort()).toEqual([]);
    expect([...ours].filter((route) => !sdk.has(route)).sort()).toEqual([]);
    expect(ours.size).toBe(TWILIO_ROUTES.length);
  });

  it('has a reason for every route that is not free', () => {
    for (const { rule } of TWILIO_ROUTES) {
      if (rule.kind === 'per-call-estimate') expect(rule.reason).not.toBe('');
      if (rule.kind === 'free-if') expect(rule.otherwise).not.toBe('');
    }
  });
});

describe('matchTwilioRoute', () => {
  const account = ['2010-04-01', 'Accounts', 'AC0123456789abcdef0123456789abcdef'];

  it.each<[string, string, readonly string[], string | null]>([
    ['a list', 'POST', [...account, 'Messages.json'], 'Accounts/*/Messages.json'],
    ['a list without .json', 'POST', [...account, 'Messages'], 'Accounts/*/Messages.json'],
    ['an instance', 'POST', [...account, 'Calls', 'CA1.json'], 'Accounts/*/Calls/*.json'],
    ['a literal over a wildcard', 'POST', [...account, 'IncomingPhoneNumbers', 'Local.json'], 'Accounts/*/IncomingPhoneNumbers/Local.json'],
    ['the wildcard where no literal matches', 'POST', [...account, 'IncomingPhoneNumbers', 'PN1.json'], 'Accounts/*/IncomingPhoneNumbers/*.json'],
    ['the account list', 'POST', ['2010-04-01', 'Accounts.json'], 'Accounts.json'],
    ['a DELETE', 'DELETE', [...account, 'Messages', 'SM1.json'], 'Accounts/*/Messages/*.json'],
    ['a method the route does not have', 'DELETE', [...account, 'Messages.json'], null],
    ['another extension', 'POST', [...account, 'Messages.csv'], null],
    ['another API version', 'POST', ['2008-08-01', 'Accounts', 'AC1', 'Messages.json'], null],
    ['a longer path', 'POST', [...account, 'Messages', 'SM1', 'Media', 'ME1', 'X.json'], null],
    ['an empty segment for a wildcard', 'POST', [...account, 'Calls', '.json'], null],
  ])('%s', (_name, method, segments, path) => {
    expect(matchTwilioRoute(method, segments)?.path ?? null).toBe(path);
  });
});
