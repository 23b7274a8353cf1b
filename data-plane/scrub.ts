/**
 * The real secret must never reach a caller, even when a vendor echoes request headers into
 * an error body. Every form of it is replaced before a response leaves. Pure.
 */
const REDACTED_TEXT = '[redacted by keybrake]';
const REDACTED = Buffer.from(REDACTED_TEXT);

export function scrubBuffer(body: Buffer, forms: readonly string[]): Buffer {
  let result = body;
  for (const form of forms) {
    if (form.length < 4) continue;
    const needle = Buffer.from(form, 'utf8');
    let index = result.indexOf(needle);
    if (index === -1) continue;
    const parts: Buffer[] = [];
    let from = 0;
    while (index !== -1) {
      parts.push(result.subarray(from, index), REDACTED);
      from = index + needle.length;
      index = result.indexOf(needle, from);
    }
    parts.push(result.subarray(from));
    result = Buffer.concat(parts);
  }
  return result;
}

export function scrubText(text: string, forms: readonly string[]): string {
  let result = text;
  for (const form of forms) if (form.length >= 4 && result.includes(form)) result = result.split(form).join(REDACTED_TEXT);
  return result;
}
