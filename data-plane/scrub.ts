/**
 * The real secret must never reach a caller, even when a vendor echoes it back: raw, in
 * base64 (an echoed `Authorization: Basic …`), in hex or UTF-16, or behind the escapes a client
 * undoes when it reads the answer (JSON `\u005f` and `\/`, percent-encoding, HTML entities), or
 * inside a compressed answer. Pure: no I/O (node:zlib's sync functions only).
 *
 * The scrubber looks at what the client will decode:
 *  1. `decodeContent` undoes every Content-Encoding (or refuses one it does not know); the
 *     proxy sends the decoded body as identity.
 *  2. `scrubBody` replaces every byte-level form of each secret (`SecretForms.needles`: raw,
 *     base64 standard and url-safe at the three byte alignments, hex; UTF-16/32 when the body
 *     has a NUL byte) with `[redacted by keybrake]`: a few `indexOf` scans, the whole cost on
 *     the common path.
 *  3. Only when the body holds an escape marker (`\`, `%` or `&`) does it decode views of it
 *     (each escape family alone, and chained up to three deep: a URL inside a JSON string,
 *     double percent-encoding), look for the forms in each view, map every find back to the
 *     bytes it came from and redact those. Every way of escaping any subset of the secret's
 *     characters is covered without listing 2^n variants.
 *  4. Whatever was redacted is checked again; a secret still visible means null: the caller
 *     refuses the answer rather than leak it (fail closed).
 */
import { brotliDecompressSync, constants as zlib, gunzipSync, inflateRawSync, inflateSync } from 'node:zlib';

const REDACTED_TEXT = '[redacted by keybrake]';
const REDACTED = Buffer.from(REDACTED_TEXT);

/** Secrets shorter than this are not scrubbed (they would match ordinary text). */
const MIN_SECRET_LENGTH = 4;
/** A derived form (base64 of a few bytes) shorter than this would match ordinary text. */
const MIN_DERIVED_LENGTH = 8;

/**
 * Every byte-level form of a credential's secrets, computed once per credential. No needle
 * contains another (the shorter one alone finds both).
 */
export interface SecretForms {
  /** Scanned in every answer and in every decoded view of one: raw, base64 (std and url, 3 alignments), hex. */
  readonly needles: readonly Needle[];
  /** The same, as latin1 strings (header values). */
  readonly needleTexts: readonly string[];
  /** UTF-16 and UTF-32 (LE and BE): scanned only when a NUL byte is present. */
  readonly wideNeedles: readonly Needle[];
  /** The shortest needle: shorter text cannot hold any form of a secret (decoding never lengthens). */
  readonly minLength: number;
}

/**
 * One form, searched for by its suffix from its rarest character on (`anchor`, from `anchorAt`):
 * `indexOf` runs memchr on the pattern's first byte and compares at each hit, so a pattern that
 * starts with a byte common in JSON (`s`, `c`) costs several times one that starts with `K`.
 */
export interface Needle {
  readonly bytes: Buffer;
  readonly anchorAt: number;
  readonly anchor: Buffer;
}

export function secretFormsFor(secrets: readonly string[]): SecretForms {
  const narrow: Buffer[] = [];
  const wide: Buffer[] = [];
  for (const secret of secrets) {
    if (secret.length < MIN_SECRET_LENGTH) continue;
    const bytes = Buffer.from(secret, 'utf8');
    narrow.push(bytes);
    for (let alignment = 0; alignment < 3; alignment++) {
      const standard = base64Determined(bytes, alignment);
      if (standard.length < MIN_DERIVED_LENGTH) continue;
      narrow.push(Buffer.from(standard, 'latin1'), Buffer.from(standard.replaceAll('+', '-').replaceAll('/', '_'), 'latin1'));
    }
    const hex = bytes.toString('hex');
    narrow.push(Buffer.from(hex, 'latin1'), Buffer.from(hex.toUpperCase(), 'latin1'));
    const utf16le = Buffer.from(secret, 'utf16le');
    const utf32le = Buffer.alloc(utf16le.length * 2);
    let length = 0;
    for (const char of secret) length = utf32le.writeUInt32LE(char.codePointAt(0)!, length);
    wide.push(utf16le, Buffer.from(utf16le).swap16(), utf32le.subarray(0, length), Buffer.from(utf32le.subarray(0, length)).swap32());
  }
  const needles = minimal(narrow);
  const wideNeedles = minimal(wide);
  const minLength = Math.min(...needles.map((n) => n.length), ...wideNeedles.map((n) => n.length));
  return { needles: needles.map(anchored), needleTexts: needles.map((n) => n.toString('latin1')), wideNeedles: wideNeedles.map(anchored), minLength };
}

/** Bytes by how common they are in vendor JSON answers, most common first (counted on Stripe and Twilio answers). */
const COMMON_BYTES = ' "eatn:0rcls,\nduoi_pm1bf2h453y8kg6/7{N}EwvKRAPjS.Mx9T-CJGzFUYL+DXV@BOQ#WHI[]q';
/** Anchors keep at least this many bytes, so that a match of the anchor alone is rare. */
const MIN_ANCHOR_LENGTH = 8;

function anchored(bytes: Buffer): Needle {
  let anchorAt = 0;
  let rarest = -1;
  for (let k = 0; k <= bytes.length - Math.min(MIN_ANCHOR_LENGTH, bytes.length); k++) {
    const rank = COMMON_BYTES.indexOf(String.fromCharCode(bytes[k]!));
    const rarity = rank === -1 ? COMMON_BYTES.length : rank;
    if (rarity > rarest) {
      rarest = rarity;
      anchorAt = k;
    }
  }
  return { bytes, anchorAt, anchor: bytes.subarray(anchorAt) };
}

/** The first index of `needle` in `haystack` at or after `from`, or -1. */
function indexOfNeedle(haystack: Buffer, needle: Needle, from = 0): number {
  const { bytes, anchorAt, anchor } = needle;
  for (let at = haystack.indexOf(anchor, from + anchorAt); at !== -1; at = haystack.indexOf(anchor, at + 1)) {
    if (anchorAt === 0 || haystack.compare(bytes, 0, anchorAt, at - anchorAt, at) === 0) return at - anchorAt;
  }
  return -1;
}

/**
 * The base64 characters of `bytes` encoded after `alignment` (0–2) unknown bytes, keeping only
 * those all six bits of which come from `bytes`: what any base64 blob holding the secret at
 * that alignment contains, whatever surrounds it.
 */
function base64Determined(bytes: Buffer, alignment: number): string {
  const encoded = Buffer.concat([Buffer.alloc(alignment), bytes]).toString('base64');
  return encoded.slice(Math.ceil((8 * alignment) / 6), Math.floor((8 * (alignment + bytes.length)) / 6));
}

/** Distinct needles, dropping any that contains a shorter one. */
function minimal(forms: readonly Buffer[]): Buffer[] {
  const sorted = [...forms].sort((a, b) => a.length - b.length);
  const kept: Buffer[] = [];
  for (const form of sorted) if (!kept.some((k) => form.includes(k))) kept.push(form);
  return kept;
}

// --- Content-Encoding ------------------------------------------------------------------------

export type DecodedContent = { ok: true; body: Buffer; decoded: boolean } | { ok: false; reason: string };

/** More layers than any real server sends; a refusal, not a loop. */
const MAX_CONTENT_CODINGS = 4;

/**
 * The body as the client would see it after undoing its Content-Encoding (a header value or
 * repeated values, codings applied in order, so undone in reverse). identity passes untouched;
 * gzip, x-gzip, deflate (zlib or raw, as clients accept both) and br are decoded with at most
 * `maxBytes` out (a zip bomb is refused, not expanded); anything else is refused.
 * `decoded: true` means the body changed: send it without Content-Encoding.
 */
export function decodeContent(contentEncoding: string | readonly string[] | undefined, body: Buffer, maxBytes: number): DecodedContent {
  if (contentEncoding === undefined) return { ok: true, body, decoded: false };
  const text = typeof contentEncoding === 'string' ? contentEncoding : contentEncoding.join(',');
  const codings = text.split(',').map((c) => c.trim().toLowerCase()).filter((c) => c !== '' && c !== 'identity');
  if (codings.length === 0) return { ok: true, body, decoded: false };
  if (codings.length > MAX_CONTENT_CODINGS) return { ok: false, reason: `${codings.length} stacked content codings` };
  let out = body;
  for (let i = codings.length - 1; i >= 0; i--) {
    const coding = codings[i]!;
    if (!DECODERS.has(coding)) return { ok: false, reason: `unsupported content coding ${JSON.stringify(coding.slice(0, 40))}` };
    // An empty body (HEAD, 204, 304) has nothing to decode.
    if (out.length === 0) continue;
    try {
      out = DECODERS.get(coding)!(out, maxBytes);
    } catch (error) {
      const tooLarge = (error as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE' || error instanceof RangeError;
      return { ok: false, reason: tooLarge ? `${coding} body decodes to more than ${maxBytes} bytes` : `${coding} body could not be decoded` };
    }
  }
  return { ok: true, body: out, decoded: true };
}

const DECODERS = new Map<string, (body: Buffer, maxBytes: number) => Buffer>([
  ['gzip', (body, maxOutputLength) => gunzipSync(body, { maxOutputLength })],
  ['x-gzip', (body, maxOutputLength) => gunzipSync(body, { maxOutputLength })],
  ['deflate', inflateEither],
  ['br', (body, maxOutputLength) => brotliDecompressSync(body, { maxOutputLength })],
]);

function inflateEither(body: Buffer, maxOutputLength: number): Buffer {
  try {
    return inflateSync(body, { maxOutputLength });
  } catch (error) {
    if (error instanceof RangeError) throw error;
    return inflateRawSync(body, { maxOutputLength });
  }
}

// --- Scrubbing -------------------------------------------------------------------------------

/**
 * The body with every form of every secret replaced, or null when a secret would still reach
 * the client (refuse the answer). Returns `body` itself when there was nothing to replace.
 */
export function scrubBody(body: Buffer, forms: SecretForms): Buffer | null {
  return scrub(body, forms, true);
}

/** A response header value (latin1, as undici gives it) scrubbed like a body, or null. */
export function scrubHeaderValue(text: string, forms: SecretForms): string | null {
  if (text.length < forms.minLength) return text;
  let suspect = text.includes('\\') || text.includes('%') || text.includes('&') || text.includes('\0');
  for (let i = 0; !suspect && i < forms.needleTexts.length; i++) suspect = text.includes(forms.needleTexts[i]!);
  if (!suspect) return text;
  const encoding = /[^\x00-\xff]/.test(text) ? 'utf8' : 'latin1';
  const bytes = Buffer.from(text, encoding);
  const clean = scrub(bytes, forms, false);
  return clean === null ? null : clean === bytes ? text : clean.toString(encoding);
}

function scrub(body: Buffer, forms: SecretForms, sniffGzip: boolean): Buffer | null {
  let out = replaceNeedles(body, forms);
  if (hasMarker(out)) {
    const spans = encodedSpans(out, forms);
    if (spans.length > 0) out = redactSpans(out, spans);
  }
  // Whatever was replaced is checked again: a secret still visible is never sent.
  if (out !== body && leaks(out, forms, 0)) return null;
  if (sniffGzip && isGzip(out) && gzipLeaks(out, forms, 0)) return null;
  return out;
}

function replaceNeedles(body: Buffer, forms: SecretForms): Buffer {
  let result = body;
  for (const needle of forms.needles) result = replaceAll(result, needle);
  if (result.indexOf(0) !== -1) for (const needle of forms.wideNeedles) result = replaceAll(result, needle);
  return result;
}

function replaceAll(body: Buffer, needle: Needle): Buffer {
  let index = indexOfNeedle(body, needle);
  if (index === -1) return body;
  const parts: Buffer[] = [];
  let from = 0;
  while (index !== -1) {
    parts.push(body.subarray(from, index), REDACTED);
    from = index + needle.bytes.length;
    index = indexOfNeedle(body, needle, from);
  }
  parts.push(body.subarray(from));
  return Buffer.concat(parts);
}

const BACKSLASH = 0x5c;
const PERCENT = 0x25;
const AMPERSAND = 0x26;

function hasMarker(bytes: Buffer): boolean {
  return bytes.indexOf(BACKSLASH) !== -1 || bytes.indexOf(PERCENT) !== -1 || bytes.indexOf(AMPERSAND) !== -1;
}

/** Whether any form of a secret is visible in `bytes`, directly, behind escapes or (nested) gzip. */
function leaks(bytes: Buffer, forms: SecretForms, depth: number): boolean {
  if (findsNeedle(bytes, forms)) return true;
  if (hasMarker(bytes) && explore(bytes, forms, [], null)) return true;
  return isGzip(bytes) && gzipLeaks(bytes, forms, depth);
}

function findsNeedle(bytes: Buffer, forms: SecretForms): boolean {
  for (const needle of forms.needles) if (indexOfNeedle(bytes, needle) !== -1) return true;
  if (bytes.indexOf(0) !== -1) for (const needle of forms.wideNeedles) if (indexOfNeedle(bytes, needle) !== -1) return true;
  return false;
}

// --- Undeclared gzip -------------------------------------------------------------------------

/** An answer that is itself gzip data (undeclared, or a transfer coding undici left alone). */
const GZIP_SNIFF_MAX_BYTES = 32 * 1024 * 1024;
const GZIP_SNIFF_MAX_DEPTH = 2;

function isGzip(bytes: Buffer): boolean {
  return bytes.length >= 18 && bytes[0] === 0x1f && bytes[1] === 0x8b;
}

/** Gzip data cannot be redacted in place: a secret inside (or too much to look at) refuses it. */
function gzipLeaks(bytes: Buffer, forms: SecretForms, depth: number): boolean {
  if (depth >= GZIP_SNIFF_MAX_DEPTH) return true;
  let inner: Buffer;
  try {
    // A truncated stream still yields what a lenient client would read of it.
    inner = gunzipSync(bytes, { maxOutputLength: GZIP_SNIFF_MAX_BYTES, finishFlush: zlib.Z_SYNC_FLUSH });
  } catch (error) {
    // Too large to check: refused. Not gzip after all (a corrupt header): no client decodes it either.
    return error instanceof RangeError || (error as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE';
  }
  return leaks(inner, forms, depth + 1);
}

// --- Escaped forms ---------------------------------------------------------------------------

/**
 * A decoded view of an answer: its bytes and, when asked for, the span of the original answer
 * each byte came from (an escape decodes to bytes that all map to the whole escape).
 */
interface View {
  readonly bytes: Buffer;
  readonly start: Uint32Array | null;
  readonly end: Uint32Array | null;
}

/**
 * The escape families, each undone alone by one decoding pass:
 *  0 backslash: JSON / JavaScript string escapes: `\uXXXX` (surrogate pairs), `\u{…}`, `\UXXXXXXXX`, `\xHH`, `\n`…, `\/` and any `\c` → c;
 *  1 percent: `%HH` (either case) and `%uHHHH`;
 *  2 ampersand: HTML character references: `&#DDD;`, `&#xHH;` (`;` optional, as browsers read them) and named ASCII ones.
 */
type Family = 0 | 1 | 2;
const BACKSLASH_FAMILY = 0;
const PERCENT_FAMILY = 1;
const FAMILIES: readonly Family[] = [0, 1, 2];
const MARKERS: readonly number[] = [BACKSLASH, PERCENT, AMPERSAND];
/** Decoding chains explored: every sequence of up to this many passes (a URL in a JSON string, double encoding). */
const MAX_CHAIN = 3;

/**
 * The spans of `bytes` (original offsets, unmerged) that decode to a form of a secret in some
 * view. Views are first explored without offset maps (cheap); only the chains that found
 * something are replayed with them.
 */
function encodedSpans(bytes: Buffer, forms: SecretForms): Array<[number, number]> {
  const found: Family[][] = [];
  explore(bytes, forms, [], found);
  const spans: Array<[number, number]> = [];
  for (const chain of found) {
    let view: View = { bytes, start: null, end: null };
    for (const family of chain) view = decodeView(family, view, true)!;
    collectSpans(view, forms, spans);
  }
  return spans;
}

/**
 * Decodes `bytes` along every chain of families (each only where its marker is present and the
 * pass changes something). With `found`, records every chain whose view shows a form; without,
 * stops at the first. Returns whether any did. A view already seen along another chain (escape
 * families that do not interact decode to the same bytes in either order) is not explored
 * again: a body dense with all three markers costs a handful of passes, not 39.
 */
function explore(bytes: Buffer, forms: SecretForms, chain: readonly Family[], found: Family[][] | null, seen: Array<[Buffer, number]> = []): boolean {
  let any = false;
  for (const family of FAMILIES) {
    if (bytes.indexOf(MARKERS[family]!) === -1) continue;
    const view = decodeView(family, { bytes, start: null, end: null }, false);
    const next = [...chain, family];
    // Seen no deeper than here: everything reachable from it was (or will be) explored.
    if (view === null || seen.some(([other, depth]) => depth <= next.length && other.equals(view.bytes))) continue;
    seen.push([view.bytes, next.length]);
    if (findsNeedle(view.bytes, forms)) {
      if (found === null) return true;
      found.push(next);
      any = true;
    }
    if (next.length < MAX_CHAIN && explore(view.bytes, forms, next, found, seen)) {
      if (found === null) return true;
      any = true;
    }
  }
  return any;
}

function collectSpans(view: View, forms: SecretForms, spans: Array<[number, number]>): void {
  const { bytes, start, end } = view;
  const collect = (needle: Needle) => {
    for (let index = indexOfNeedle(bytes, needle); index !== -1; index = indexOfNeedle(bytes, needle, index + 1)) {
      spans.push([start![index]!, end![index + needle.bytes.length - 1]!]);
    }
  };
  for (const needle of forms.needles) collect(needle);
  if (bytes.indexOf(0) !== -1) for (const needle of forms.wideNeedles) collect(needle);
}

function redactSpans(bytes: Buffer, spans: Array<[number, number]>): Buffer {
  spans.sort((a, b) => a[0] - b[0]);
  const parts: Buffer[] = [];
  let from = 0;
  let i = 0;
  while (i < spans.length) {
    let [spanStart, spanEnd] = spans[i++]!;
    while (i < spans.length && spans[i]![0] <= spanEnd) spanEnd = Math.max(spanEnd, spans[i++]![1]);
    if (spanStart < from) spanStart = from;
    parts.push(bytes.subarray(from, spanStart), REDACTED);
    from = spanEnd;
  }
  parts.push(bytes.subarray(from));
  return Buffer.concat(parts);
}

/** One decoding pass of one family over a view; null when it changes nothing. */
function decodeView(family: Family, view: View, withMaps: boolean): View | null {
  const src = view.bytes;
  const n = src.length;
  const marker = MARKERS[family]!;
  // Most markers start no escape (a "%" in prose, "&" in a query string): nothing to allocate then.
  let first = src.indexOf(marker);
  while (first !== -1 && escapeAt(family, src, first) === 0) first = src.indexOf(marker, first + 1);
  if (first === -1) return null;
  const out = Buffer.allocUnsafe(n); // every escape is at least as long as what it decodes to
  const start = withMaps ? new Uint32Array(n) : null;
  const end = withMaps ? new Uint32Array(n) : null;
  let o = 0;
  let i = 0;
  while (i < n) {
    const next = src.indexOf(marker, i);
    const literalEnd = next === -1 ? n : next;
    if (literalEnd > i) {
      src.copy(out, o, i, literalEnd);
      if (start !== null) for (let k = i; k < literalEnd; k++, o++) mapByte(view, start, end!, o, k, k + 1);
      else o += literalEnd - i;
      i = literalEnd;
      if (i === n) break;
    }
    const consumed = escapeAt(family, src, i);
    if (consumed === 0) {
      out[o] = src[i]!;
      if (start !== null) mapByte(view, start, end!, o, i, i + 1);
      o++;
      i++;
      continue;
    }
    const emittedFrom = o;
    if (tokenIsByte) out[o++] = tokenValue;
    else o = writeUtf8(out, o, tokenValue);
    if (start !== null) for (let k = emittedFrom; k < o; k++) mapByte(view, start, end!, k, i, i + consumed);
    i += consumed;
  }
  return { bytes: out.subarray(0, o), start: start?.subarray(0, o) ?? null, end: end?.subarray(0, o) ?? null };
}

/** The length of the escape of `family` at `i` (0 if none there), its value in tokenValue. */
function escapeAt(family: Family, src: Buffer, i: number): number {
  return family === BACKSLASH_FAMILY ? backslashAt(src, i) : family === PERCENT_FAMILY ? percentAt(src, i) : ampersandAt(src, i);
}

/** Output byte `o` came from source bytes [from, to) of `view`: record that span in original offsets. */
function mapByte(view: View, start: Uint32Array, end: Uint32Array, o: number, from: number, to: number): void {
  start[o] = view.start === null ? from : view.start[from]!;
  end[o] = view.end === null ? to : view.end[to - 1]!;
}

// What the last escape decoded to: a byte or a code point (written as UTF-8).
let tokenValue = 0;
let tokenIsByte = false;

function decoded(value: number, isByte: boolean, consumed: number): number {
  tokenValue = value;
  tokenIsByte = isByte;
  return consumed;
}

const SIMPLE_ESCAPES: Readonly<Record<number, number>> = { 0x6e: 0x0a, 0x72: 0x0d, 0x74: 0x09, 0x62: 0x08, 0x66: 0x0c, 0x76: 0x0b, 0x30: 0x00 };

/** Length of the backslash escape at `i` (0 if none), its value in tokenValue. */
function backslashAt(src: Buffer, i: number): number {
  if (i + 1 >= src.length) return 0;
  const c = src[i + 1]!;
  if (c === 0x75 /* u */) {
    if (src[i + 2] === 0x7b /* { */) {
      let cp = 0;
      let k = i + 3;
      for (; k < src.length && k < i + 11 && hexValue(src[k]!) >= 0; k++) cp = cp * 16 + hexValue(src[k]!);
      if (k > i + 3 && src[k] === 0x7d /* } */) return decoded(validCodePoint(cp), false, k + 1 - i);
      return decoded(c, true, 2);
    }
    const unit = hexNumber(src, i + 2, 4);
    if (unit < 0) return decoded(c, true, 2);
    if (unit >= 0xd800 && unit < 0xdc00 && src[i + 6] === BACKSLASH && src[i + 7] === 0x75) {
      const low = hexNumber(src, i + 8, 4);
      if (low >= 0xdc00 && low < 0xe000) return decoded(0x10000 + ((unit - 0xd800) << 10) + (low - 0xdc00), false, 12);
    }
    return decoded(validCodePoint(unit), false, 6);
  }
  if (c === 0x55 /* U */) {
    const cp = hexNumber(src, i + 2, 8);
    return cp < 0 ? decoded(c, true, 2) : decoded(validCodePoint(cp), false, 10);
  }
  if (c === 0x78 /* x */) {
    const cp = hexNumber(src, i + 2, 2);
    return cp < 0 ? decoded(c, true, 2) : decoded(cp, false, 4);
  }
  const simple = SIMPLE_ESCAPES[c];
  return decoded(simple ?? c, true, 2);
}

function percentAt(src: Buffer, i: number): number {
  const byte = hexNumber(src, i + 1, 2);
  if (byte >= 0) return decoded(byte, true, 3);
  if (src[i + 1] === 0x75 || src[i + 1] === 0x55) {
    const unit = hexNumber(src, i + 2, 4);
    if (unit >= 0) return decoded(validCodePoint(unit), false, 6);
  }
  return 0;
}

function ampersandAt(src: Buffer, i: number): number {
  let k = i + 1;
  if (src[k] === 0x23 /* # */) {
    k++;
    const hex = src[k] === 0x78 || src[k] === 0x58;
    if (hex) k++;
    const digitsFrom = k;
    let cp = 0;
    for (; k < src.length; k++) {
      const digit = hex ? hexValue(src[k]!) : src[k]! >= 0x30 && src[k]! <= 0x39 ? src[k]! - 0x30 : -1;
      if (digit < 0) break;
      cp = Math.min(cp * (hex ? 16 : 10) + digit, 0x110000);
    }
    if (k === digitsFrom) return 0;
    if (src[k] === 0x3b /* ; */) k++;
    return decoded(validCodePoint(cp), false, k - i);
  }
  for (; k < src.length && k < i + 33 && isAsciiLetter(src[k]!); k++);
  if (src[k] !== 0x3b || k === i + 1) return 0;
  const value = NAMED_REFERENCES.get(src.toString('latin1', i + 1, k));
  return value === undefined ? 0 : decoded(value, true, k + 1 - i);
}

/** HTML named character references that stand for ASCII characters. */
const NAMED_REFERENCES = new Map<string, number>(
  Object.entries({
    amp: '&', AMP: '&', lt: '<', LT: '<', gt: '>', GT: '>', quot: '"', QUOT: '"', apos: "'", lowbar: '_', UnderBar: '_', colon: ':', plus: '+',
    sol: '/', equals: '=', period: '.', comma: ',', excl: '!', num: '#', dollar: '$', percnt: '%', ast: '*', midast: '*', lpar: '(', rpar: ')',
    lsqb: '[', lbrack: '[', rsqb: ']', rbrack: ']', lcub: '{', lbrace: '{', rcub: '}', rbrace: '}', verbar: '|', vert: '|', VerticalLine: '|',
    semi: ';', quest: '?', commat: '@', bsol: '\\', Hat: '^', grave: '`', DiacriticalGrave: '`', Tab: '\t', NewLine: '\n',
  }).map(([name, char]) => [name, char.charCodeAt(0)]),
);

function isAsciiLetter(b: number): boolean {
  return (b >= 0x41 && b <= 0x5a) || (b >= 0x61 && b <= 0x7a);
}

function hexValue(b: number): number {
  if (b >= 0x30 && b <= 0x39) return b - 0x30;
  const lower = b | 0x20;
  return lower >= 0x61 && lower <= 0x66 ? lower - 0x61 + 10 : -1;
}

/** The number written by exactly `digits` hex digits at `at`, or -1. */
function hexNumber(src: Buffer, at: number, digits: number): number {
  if (at + digits > src.length) return -1;
  let value = 0;
  for (let k = at; k < at + digits; k++) {
    const digit = hexValue(src[k]!);
    if (digit < 0) return -1;
    value = value * 16 + digit;
  }
  return value;
}

/** Lone surrogates and out-of-range values decode to U+FFFD, as decoders render them. */
function validCodePoint(cp: number): number {
  return cp > 0x10ffff || (cp >= 0xd800 && cp < 0xe000) ? 0xfffd : cp;
}

function writeUtf8(out: Buffer, o: number, cp: number): number {
  if (cp < 0x80) {
    out[o] = cp;
    return o + 1;
  }
  if (cp < 0x800) {
    out[o] = 0xc0 | (cp >> 6);
    out[o + 1] = 0x80 | (cp & 0x3f);
    return o + 2;
  }
  if (cp < 0x10000) {
    out[o] = 0xe0 | (cp >> 12);
    out[o + 1] = 0x80 | ((cp >> 6) & 0x3f);
    out[o + 2] = 0x80 | (cp & 0x3f);
    return o + 3;
  }
  out[o] = 0xf0 | (cp >> 18);
  out[o + 1] = 0x80 | ((cp >> 12) & 0x3f);
  out[o + 2] = 0x80 | ((cp >> 6) & 0x3f);
  out[o + 3] = 0x80 | (cp & 0x3f);
  return o + 4;
}
