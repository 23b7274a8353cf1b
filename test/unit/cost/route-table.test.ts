import { describe, expect, it } from 'vitest';

import { RouteTable } from '../../../core/cost/route-table.js';

const table = new RouteTable(
  [
    { method: 'POST', segments: ['v1', 'invoices', '*'], value: 'update' },
    { method: 'POST', segments: ['v1', 'invoices', 'create_preview'], value: 'preview' },
    { method: 'POST', segments: ['v1', 'invoices', '*', 'pay'], value: 'pay' },
    { method: 'DELETE', segments: ['v1', 'invoices', '*'], value: 'delete' },
  ],
  2,
);

describe('RouteTable', () => {
  it('finds the most literal pattern a call falls on, by method', () => {
    expect(table.find('POST', ['v1', 'invoices', 'in_1'])).toBe('update');
    expect(table.find('POST', ['v1', 'invoices', 'create_preview'])).toBe('preview');
    expect(table.find('POST', ['v1', 'invoices', 'in_1', 'pay'])).toBe('pay');
    expect(table.find('DELETE', ['v1', 'invoices', 'in_1'])).toBe('delete');
  });

  it('finds nothing for another length, resource, method, or an empty segment where * stands', () => {
    expect(table.find('POST', ['v1', 'invoices'])).toBeUndefined();
    expect(table.find('POST', ['v1', 'charges', 'ch_1'])).toBeUndefined();
    expect(table.find('GET', ['v1', 'invoices', 'in_1'])).toBeUndefined();
    expect(table.find('POST', ['v1', 'invoices', ''])).toBeUndefined();
    expect(table.find('POST', ['v1'])).toBeUndefined();
  });

  it('refuses a pattern with a wildcard where its table buckets by literals', () => {
    expect(() => new RouteTable([{ method: 'POST', segments: ['v1', '*'], value: 1 }], 2)).toThrow(/first 2 segments must be literal/);
  });
});
