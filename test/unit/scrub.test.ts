/**
 * The scrubber against every form in which a vendor could echo the real secret, judged by an
 * independent oracle (`decodableSecret`): what a client could decode from the answer. Each named
 * case is one the scrubber before this file (raw secret + `base64(secret:)`, no decoding) let
 * through: `oldScrubberMisses` checks that too.
 */
import { brotliCompressSync, deflateRawSync, deflateSync, gunzipSync, gzipSync } from 'node:zlib';

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';

import { decodeContent, scrubBody, scrubHeaderValue, secretFormsFor, type SecretForms } from '../../data-plane/scrub.js';
import { VENDOR_ADAPTERS } from '../../data-plane/vendors/index.js';

const SECRET = 'sk_live_CANARY_never_log_me_0123456789';
const TWILIO_SID = `AC${'1'.repeat(32)}`;
const TWILIO_TOKEN = '0123456789abcdef0123456789abcdef';
const REDACTED = '[redacted by keybrake]';

const stripeForms = secretFormsFor(VENDOR_ADAPTERS.stripe.secretForms({ secret: SECRET, accountSid: '' }));
const twilioForms = secretFormsFor(VENDOR_ADAPTERS.twilio.secretForms({ secret: TWILIO_TOKEN, accountSid: TWILIO_SID }));

// --- The oracle ------------------------------------------------------------------------------

const NAMED: Record<string, string> = { lowbar: '_', UnderBar: '_', colon: ':', plus: '+', sol: '/', equals: '=', amp: '&', quot: '"', percnt: '%', bsol: '\\' };
const SIMPLE: Record<string, string> = { n: '\n', r: '\r', t: '\t', b: '\b', f: '\f', v: '\v', '0': '\0' };

/** One layer of each escape family a client may undo, written independently of scrub.ts. */
const DECODERS: Record<string, (text: string) => string> = {
  json: (text) =>
    text.replace(/\\(?:u([0-9a-fA-F]{4})|u\{([0-9a-fA-F]{1,6})\}|x([0-9a-fA-F]{2})|([\s\S]))/g, (_, u?: string, braced?: string, x?: string, c?: string) =>
      u !== undefined || braced !== undefined || x !== undefined ? String.fromCodePoint(Math.min(parseInt(u ?? braced ?? x!, 16), 0x10ffff)) : (SIMPLE[c!] ?? c!),
    ),
  percent: (text) => text.replace(/%(?:([0-9a-fA-F]{2})|[uU]([0-9a-fA-F]{4}))/g, (_, h?: string, u?: string) => String.fromCharCode(parseInt(h ?? u!, 16))),
  html: (text) =>
    text.replace(/&#(?:[xX]([0-9a-fA-F]+)|([0-9]+));?|&([A-Za-z]+);/g, (all, h?: string, d?: string, name?: string) =>
      h !== undefined ? String.fromCodePoint(Math.min(parseInt(h, 16), 0x10ffff)) : d !== undefined ? String.fromCodePoint(Math.min(parseInt(d, 10), 0x10ffff)) : (NAMED[name!] ?? all),
    ),
};

/**
 * UTF-16 code units from `from` on, decoded by hand: Node 24.21's own utf16le decoding of an
 * unaligned view (`buf.subarray(1).toString('utf16le')`) corrupts the heap (glibc aborts with
 * "corrupted size vs. prev_size"), and the oracle should not share the product's runtime paths anyway.
 */
function utf16(bytes: Buffer, from: number, order: 'le' | 'be'): string {
  let text = '';
  for (let i = from; i + 1 < bytes.length; i += 2) text += String.fromCharCode(order === 'le' ? bytes[i]! | (bytes[i + 1]! << 8) : (bytes[i]! << 8) | bytes[i + 1]!);
  return text;
}

/** Where the secret can be read in `output` (a description), or null: raw, base64, hex, UTF-16, behind up to three escape layers, or gzipped. */
function decodableSecret(output: Buffer | string, secret: string): string | null {
  const bytes = typeof output === 'string' ? Buffer.from(output, 'latin1') : output;
  const needle = Buffer.from(secret, 'utf8').toString('latin1');
  if (bytes.length >= 2 && bytes[0] === 0x1f && bytes[1] === 0x8b) {
    const inner = gunzipSync(bytes, { finishFlush: 2 /* Z_SYNC_FLUSH */ });
    const found = decodableSecret(inner, secret);
    if (found !== null) return `gzip → ${found}`;
  }
  for (const [label, from] of [['utf16le', 0], ['utf16le+1', 1]] as const) {
    if (utf16(bytes, from, 'le').includes(secret)) return label;
    if (utf16(bytes, from, 'be').includes(secret)) return `${label} swapped`;
  }
  let views: Array<[string, string]> = [['raw', bytes.toString('latin1')]];
  // Non-ASCII escapes decode to code points: compare in UTF-8 too.
  const all: Array<[string, string]> = [];
  for (let depth = 0; depth <= 3; depth++) {
    all.push(...views);
    const next: Array<[string, string]> = [];
    for (const [label, text] of views) {
      for (const [name, decode] of Object.entries(DECODERS)) {
        const decoded = decode(text);
        if (decoded !== text) next.push([`${label} → ${name}`, decoded]);
      }
    }
    views = next;
  }
  for (const [label, text] of all) {
    const latin1 = /[^\x00-\xff]/.test(text) ? Buffer.from(text, 'utf8').toString('latin1') : text;
    if (text.includes(secret) || latin1.includes(needle)) return label;
    for (const run of latin1.match(/[A-Za-z0-9+/_-]{8,}/g) ?? []) {
      for (let offset = 0; offset < 4; offset++) if (Buffer.from(run.slice(offset), 'base64').toString('latin1').includes(needle)) return `${label} → base64`;
    }
    for (const run of latin1.match(/[0-9a-fA-F]{16,}/g) ?? []) {
      for (let offset = 0; offset < 2; offset++) if (Buffer.from(run.slice(offset), 'hex').toString('latin1').includes(needle)) return `${label} → hex`;
    }
  }
  return null;
}

/** The scrubber before this change: the raw secret and `base64(secret:)` replaced, nothing decoded. */
function oldScrubberMisses(output: Buffer | string, secret: string): boolean {
  const text = typeof output === 'string' ? output : output.toString('latin1');
  const old = [secret, Buffer.from(`${secret}:`).toString('base64')];
  return !old.some((form) => text.includes(form)) && decodableSecret(output, secret) !== null;
}

function expectClean(body: Buffer | string, forms: SecretForms, secrets: readonly string[]): string {
  const input = typeof body === 'string' ? Buffer.from(body, 'latin1') : body;
  const out = scrubBody(input, forms);
  expect(out, 'scrubBody refused the answer').not.toBeNull();
  for (const secret of secrets) expect(decodableSecret(out!, secret), `secret visible in ${out!.toString('latin1')}`).toBeNull();
  return out!.toString('latin1');
}

// --- Encoders for the cases ------------------------------------------------------------------

const b64 = (text: string | Buffer) => Buffer.from(text).toString('base64');
const b64url = (text: string | Buffer) => Buffer.from(text).toString('base64url');
const percentAll = (text: string, upper = true) => [...Buffer.from(text)].map((b) => `%${b.toString(16).padStart(2, '0')}`).map((e) => (upper ? e.toUpperCase() : e)).join('');
const unicodeAll = (text: string, upper = false) => [...text].map((c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`).map((e) => (upper ? e.replace(/[a-f]/g, (h) => h.toUpperCase()) : e)).join('');

/** A secret whose base64 has "/", "+" and url-safe "-", "_" where it is fully determined (real keys' alphabet cannot). */
const WIDE_SECRET = 'sk_test_????~~~>>>???~~~abcdefghij0123456789';
const wideForms = secretFormsFor([WIDE_SECRET]);

describe('the old scrubber let these through; the new one does not', () => {
  describe('Content-Encoding', () => {
    const body = Buffer.from(JSON.stringify({ error: { message: `Invalid API Key provided: ${SECRET}` } }));
    const decodeThenScrub = (encoding: string | string[], encoded: Buffer) => {
      const result = decodeContent(encoding, encoded, 1 << 20);
      if (!result.ok) throw new Error(result.reason);
      expect(result.decoded).toBe(true);
      expect(result.body.toString()).toBe(body.toString());
      return expectClean(result.body, stripeForms, [SECRET]);
    };

    it('gzip (the proxy asked for identity; the vendor gzipped anyway)', () => {
      const gz = gzipSync(body);
      expect(oldScrubberMisses(gz, SECRET)).toBe(true);
      expect(decodeThenScrub('gzip', gz)).toContain(REDACTED);
    });
    it('x-gzip, deflate (zlib and raw), br, any case and spacing', () => {
      decodeThenScrub('x-gzip', gzipSync(body));
      decodeThenScrub('deflate', deflateSync(body));
      decodeThenScrub('Deflate', deflateRawSync(body));
      decodeThenScrub(' br ', brotliCompressSync(body));
    });
    it('stacked codings are undone in reverse order, from one header or several', () => {
      decodeThenScrub('gzip, gzip', gzipSync(gzipSync(body)));
      decodeThenScrub('deflate, br', brotliCompressSync(deflateSync(body)));
      decodeThenScrub(['gzip', 'identity', 'br'], brotliCompressSync(gzipSync(body)));
    });
    it('an undeclared gzip body holding a secret is refused by scrubBody itself', () => {
      expect(scrubBody(gzipSync(body), stripeForms)).toBeNull();
      expect(scrubBody(gzipSync(gzipSync(Buffer.from(b64(`user:${SECRET}`)))), stripeForms)).toBeNull();
      const clean = gzipSync(Buffer.from('{"id":"ch_1"}'));
      expect(scrubBody(clean, stripeForms)).toBe(clean);
    });
  });

  describe('JSON string escapes', () => {
    it('one character escaped: sk\\u005flive…', () => {
      const body = `{"message":"key ${SECRET.replace('_', '\\u005f')} is invalid"}`;
      expect(JSON.parse(body).message).toContain(SECRET);
      expect(oldScrubberMisses(body, SECRET)).toBe(true);
      const out = expectClean(body, stripeForms, [SECRET]);
      expect(JSON.parse(out)).toEqual({ message: `key ${REDACTED} is invalid` });
    });
    it('every character escaped, lower and upper hex', () => {
      for (const upper of [false, true]) {
        const body = `{"echo":"${unicodeAll(SECRET, upper)}"}`;
        expect(JSON.parse(body).echo).toBe(SECRET);
        expect(oldScrubberMisses(body, SECRET)).toBe(true);
        expect(JSON.parse(expectClean(body, stripeForms, [SECRET]))).toEqual({ echo: REDACTED });
      }
    });
    it('\\/ inside a base64 form (PHP-style JSON escapes slashes)', () => {
      const blob = b64(`user:${WIDE_SECRET}`);
      expect(blob).toContain('/');
      const body = `{"authorization":"Basic ${blob.replaceAll('/', '\\/')}"}`;
      expect(oldScrubberMisses(body, WIDE_SECRET)).toBe(true);
      expectClean(body, wideForms, [WIDE_SECRET]);
    });
    it('surrogate pairs and other escapes around the secret do not hide it', () => {
      const body = `{"m":"\\ud83d\\ude00${unicodeAll(SECRET.slice(0, 5))}${SECRET.slice(5)}\\n\\"x\\""}`;
      expect(oldScrubberMisses(body, SECRET)).toBe(true);
      expect(JSON.parse(expectClean(body, stripeForms, [SECRET]))).toEqual({ m: `😀${REDACTED}\n"x"` });
    });
  });

  describe('percent-encoding', () => {
    it('fully encoded, upper and lower hex', () => {
      for (const upper of [true, false]) {
        const body = `https://example.com/cb?key=${percentAll(SECRET, upper)}&x=1`;
        expect(oldScrubberMisses(body, SECRET)).toBe(true);
        expect(expectClean(body, stripeForms, [SECRET])).toBe(`https://example.com/cb?key=${REDACTED}&x=1`);
      }
    });
    it('partly encoded and mixed case', () => {
      const partly = SECRET.replaceAll('_', '%5F');
      // Every third character encoded, hex digits alternately upper and lower case.
      const mixed = [...SECRET].map((c, i) => (i % 3 === 0 ? percentAll(c, i % 2 === 0) : c)).join('');
      for (const encoded of [partly, mixed, encodeURIComponent(SECRET).replace('_', '%5f')]) {
        const body = `amount=100&echo=${encoded}&currency=usd`;
        expect(decodeURIComponent(encoded)).toBe(SECRET);
        expect(oldScrubberMisses(body, SECRET)).toBe(true);
        expect(expectClean(body, stripeForms, [SECRET])).toBe(`amount=100&echo=${REDACTED}&currency=usd`);
      }
    });
    it('double-encoded (%255F) and inside a JSON string', () => {
      const body = `{"url":"/cb?k=${SECRET.replaceAll('_', '%255F')}","u2":"${SECRET.replaceAll('_', '\\u0025\\u0035f')}"}`;
      expect(oldScrubberMisses(body, SECRET)).toBe(true);
      expect(JSON.parse(expectClean(body, stripeForms, [SECRET]))).toEqual({ url: `/cb?k=${REDACTED}`, u2: REDACTED });
    });
    it('three layers: a percent-encoded URL in a JSON document echoed inside a JSON string', () => {
      const inner = `{"callback":"https://x.test/?k=${SECRET.replaceAll('_', '\\u00255F')}"}`;
      const body = JSON.stringify({ error: { message: `Invalid request: ${inner}` } });
      const echoed = JSON.parse(JSON.parse(body).error.message.slice('Invalid request: '.length)).callback;
      expect(decodeURIComponent(echoed)).toBe(`https://x.test/?k=${SECRET}`);
      expect(oldScrubberMisses(body, SECRET)).toBe(true);
      const out = JSON.parse(expectClean(body, stripeForms, [SECRET]));
      expect(JSON.parse(out.error.message.slice('Invalid request: '.length))).toEqual({ callback: `https://x.test/?k=${REDACTED}` });
    });
    it('Twilio: the token percent-encoded inside AC…:token', () => {
      const body = `{"uri":"https://${TWILIO_SID}%3A${percentAll(TWILIO_TOKEN)}@api.twilio.com/"}`;
      expect(oldScrubberMisses(body, TWILIO_TOKEN)).toBe(true);
      expectClean(body, twilioForms, [TWILIO_TOKEN]);
    });
  });

  describe('base64', () => {
    it('inside a longer blob at each of the three byte alignments, standard and url-safe', () => {
      for (const secret of [SECRET, WIDE_SECRET]) {
        const forms = secretFormsFor([secret]);
        for (const prefix of ['', 'a', 'ab', 'abc', 'abcd']) {
          for (const encode of [b64, b64url]) {
            const body = `{"blob":"${encode(`${prefix}${secret}"}, more text`)}"}`;
            expect(oldScrubberMisses(body, secret)).toBe(true);
            expectClean(body, forms, [secret]);
          }
        }
      }
    });
    it('an echoed Authorization: Basic base64(user:secret)', () => {
      const body = `{"echoed_headers":{"authorization":"Basic ${b64(`user:${SECRET}`)}"}}`;
      expect(oldScrubberMisses(body, SECRET)).toBe(true);
      expectClean(body, stripeForms, [SECRET]);
    });
    it('the Stripe curl -u form base64(secret:) is still covered', () => {
      expect(expectClean(`Basic ${b64(`${SECRET}:`)}`, stripeForms, [SECRET])).toMatch(/^Basic \[redacted by keybrake\]/);
    });
    it('Twilio: base64(AC…sid:token) alone and inside a longer blob', () => {
      expectClean(`Basic ${b64(`${TWILIO_SID}:${TWILIO_TOKEN}`)}`, twilioForms, [TWILIO_TOKEN]);
      const body = `{"request":"${b64(`{"auth":"${TWILIO_SID}:${TWILIO_TOKEN}","to":"+15005550006"}`)}"}`;
      expect(oldScrubberMisses(body, TWILIO_TOKEN)).toBe(true);
      expectClean(body, twilioForms, [TWILIO_TOKEN]);
    });
    it('base64 percent-encoded (%2B, %2F, %3D) in a URL', () => {
      const blob = b64(`x${WIDE_SECRET}`);
      const body = `next=/v1/x?auth=${encodeURIComponent(blob)}`;
      expect(body).toContain('%2F');
      expect(oldScrubberMisses(body, WIDE_SECRET)).toBe(true);
      expectClean(body, wideForms, [WIDE_SECRET]);
    });
  });

  describe('further members of the class', () => {
    it('HTML character references: decimal, hex (either case), named, without semicolons', () => {
      const forms = [
        SECRET.replaceAll('_', '&#95;'),
        SECRET.replaceAll('_', '&#x5f;'),
        SECRET.replaceAll('_', '&#X5F;'),
        SECRET.replaceAll('_', '&lowbar;'),
        // Without ";" (browsers accept it) where no digit follows.
        `${SECRET.slice(0, 20).replaceAll('_', '&#95')}${SECRET.slice(20)}`,
        [...SECRET].map((c) => `&#${c.charCodeAt(0)};`).join(''),
      ];
      for (const encoded of forms) {
        const body = `<p>Invalid key: <code>${encoded}</code></p>`;
        expect(oldScrubberMisses(body, SECRET)).toBe(true);
        expect(expectClean(body, stripeForms, [SECRET])).toBe(`<p>Invalid key: <code>${REDACTED}</code></p>`);
      }
    });
    it('hex, lower and upper case, at either nibble offset of a hex blob', () => {
      for (const hex of [Buffer.from(SECRET).toString('hex'), Buffer.from(SECRET).toString('hex').toUpperCase()]) {
        for (const body of [`digest=${hex}`, `digest=ab${hex}cd`, `digest=a${hex}c`]) {
          expect(oldScrubberMisses(body, SECRET)).toBe(true);
          expectClean(body, stripeForms, [SECRET]);
        }
      }
    });
    it('UTF-16 (LE and BE) and UTF-32 bodies', () => {
      const le = Buffer.from(`{"message":"bad key ${SECRET}"}`, 'utf16le');
      for (const body of [le, Buffer.from(le).swap16()]) {
        expect(oldScrubberMisses(body, SECRET)).toBe(true);
        expectClean(body, stripeForms, [SECRET]);
      }
      const utf32 = Buffer.alloc(SECRET.length * 4);
      for (let i = 0; i < SECRET.length; i++) utf32.writeUInt32LE(SECRET.charCodeAt(i), i * 4);
      expect(scrubBody(utf32, stripeForms)!.includes(utf32)).toBe(false);
    });
    it('JavaScript-style escapes: \\x5f, \\u{5f}, identity escapes', () => {
      for (const encoded of [SECRET.replaceAll('_', '\\x5f'), SECRET.replaceAll('_', '\\u{5F}'), SECRET.replaceAll('_', '\\_')]) {
        expect(oldScrubberMisses(`var k = "${encoded}";`, SECRET)).toBe(true);
        expect(expectClean(`var k = "${encoded}";`, stripeForms, [SECRET])).toBe(`var k = "${REDACTED}";`);
      }
    });
    it('an escape marker just before the secret does not hide it (%AB…, &#12… read by a JSON-only client)', () => {
      for (const [secret, marker] of [['AB12_cdefghijklmnopqrstuvwxyz0123', '%'], ['12_cdefghijklmnopqrstuvwxyz0123', '&#']] as const) {
        const body = `{"m":"${marker}${secret.replace('_', '\\u005f')}"}`;
        expect(JSON.parse(body).m).toBe(`${marker}${secret}`);
        expect(oldScrubberMisses(body, secret)).toBe(true);
        expect(JSON.parse(expectClean(body, secretFormsFor([secret]), [secret]))).toEqual({ m: `${marker}${REDACTED}` });
      }
    });
  });

  describe('headers', () => {
    it('scrubs every encoded form in a header value too', () => {
      const values = [
        `https://example.com/return?key=${percentAll(SECRET)}`,
        `Basic ${b64(`user:${SECRET}`)}`,
        `key=${SECRET.replaceAll('_', '\\u005F')}`,
        `</v1/x?k=${SECRET.replaceAll('_', '%5f')}>; rel="next"`,
      ];
      for (const value of values) {
        expect(oldScrubberMisses(value, SECRET)).toBe(true);
        const clean = scrubHeaderValue(value, stripeForms);
        expect(clean).not.toBeNull();
        expect(clean).toContain(REDACTED);
        expect(decodableSecret(clean!, SECRET)).toBeNull();
      }
    });
    it('returns a clean value itself, short or long, with or without markers', () => {
      const long = 'https://example.com/some/long/path?with=query&and=%20encoded%41values&#x41;\\u0041 caf\xe9';
      for (const value of ['application/json', 'req_123', 'max-age=63072000; includeSubDomains; preload', 'a=1&b=%20%41', 'caf\xe9 \\ & % ok', long]) {
        expect(scrubHeaderValue(value, stripeForms)).toBe(value);
      }
    });
  });
});

describe('decodeContent', () => {
  const body = Buffer.from('{"id":"ch_1","object":"charge"}');
  it('passes identity and no encoding through untouched', () => {
    for (const encoding of [undefined, 'identity', ' Identity ', '', 'identity, identity']) {
      const result = decodeContent(encoding, body, 100);
      expect(result).toEqual({ ok: true, body, decoded: false });
      expect(result.ok && result.body).toBe(body);
    }
  });
  it('refuses a zip bomb rather than expanding it', () => {
    const bomb = gzipSync(Buffer.alloc(50 * 1024 * 1024));
    expect(bomb.length).toBeLessThan(100 * 1024);
    const result = decodeContent('gzip', bomb, 1024 * 1024);
    expect(result.ok).toBe(false);
    expect(!result.ok && result.reason).toMatch(/more than 1048576 bytes/);
    expect(decodeContent('br', brotliCompressSync(Buffer.alloc(4 * 1024 * 1024)), 1024 * 1024).ok).toBe(false);
    expect(decodeContent('deflate', deflateSync(Buffer.alloc(4 * 1024 * 1024)), 1024 * 1024).ok).toBe(false);
    expect(decodeContent('deflate', deflateRawSync(Buffer.alloc(4 * 1024 * 1024)), 1024 * 1024).ok).toBe(false);
    expect(decodeContent('gzip, gzip', gzipSync(gzipSync(Buffer.alloc(4 * 1024 * 1024))), 1024 * 1024).ok).toBe(false);
  });
  it('refuses unknown codings (zstd, compress, …), alone or stacked', () => {
    for (const encoding of ['zstd', 'compress', 'x-compress', 'gzip, zstd', 'zstd, gzip', 'chunked', 'exi', 'pack200-gzip']) {
      const result = decodeContent(encoding, gzipSync(body), 1 << 20);
      expect(result.ok, encoding).toBe(false);
      expect(!result.ok && result.reason).toMatch(/unsupported content coding/);
    }
  });
  it('refuses a body that is not what its coding says, and absurdly deep stacks', () => {
    expect(decodeContent('gzip', body, 1 << 20).ok).toBe(false);
    expect(decodeContent('br', body, 1 << 20).ok).toBe(false);
    expect(decodeContent('gzip, gzip, gzip, gzip, gzip', body, 1 << 20).ok).toBe(false);
  });
  it('an empty body (HEAD, 204) needs no decoding', () => {
    expect(decodeContent('gzip', Buffer.alloc(0), 100)).toEqual({ ok: true, body: Buffer.alloc(0), decoded: true });
  });
});

describe('secretFormsFor', () => {
  it('keeps no form that contains another (Twilio: the token alone finds AC…:token in every encoding)', () => {
    const texts = twilioForms.needles.map((n) => n.bytes.toString('latin1'));
    for (const a of texts) for (const b of texts) if (a !== b) expect(a.includes(b)).toBe(false);
    expect(texts).toContain(TWILIO_TOKEN);
    expect(texts).not.toContain(`${TWILIO_SID}:${TWILIO_TOKEN}`);
  });
  it('keeps only the base64 characters fully determined by the secret', () => {
    const texts = stripeForms.needles.map((n) => n.bytes.toString('latin1'));
    for (let alignment = 0; alignment < 3; alignment++) {
      // Whatever the surrounding bytes, the blob contains one of the forms.
      for (const around of ['\x00\x00\x00', '\xff\xff\xff', 'zzz']) {
        const blob = Buffer.concat([Buffer.from(around.slice(0, alignment), 'latin1'), Buffer.from(SECRET), Buffer.from(around, 'latin1')]).toString('base64');
        expect(texts.some((t) => blob.includes(t))).toBe(true);
      }
    }
  });
  it('skips secrets too short to scrub without matching ordinary text', () => {
    expect(secretFormsFor(['abc']).needles).toEqual([]);
    expect(scrubBody(Buffer.from('abc abc'), secretFormsFor(['abc']))!.toString()).toBe('abc abc');
  });
});

describe('the common path', () => {
  it('returns a secret-free answer itself (no copy), markers or not', () => {
    for (const text of ['{"id":"ch_1","amount":2000}', '{"description":"50% off \\"today\\" & more","url":"/v1/x?a=1&b=%20"}', '&#;&#x;%zz\\']) {
      const body = Buffer.from(text);
      expect(scrubBody(body, stripeForms)).toBe(body);
    }
  });
});

// --- Properties ------------------------------------------------------------------------------

const SECRET_ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_';
const secretArb = fc.string({ unit: fc.constantFrom(...SECRET_ALPHABET), minLength: 20, maxLength: 100 });
const printableSecretArb = fc.string({ unit: fc.constantFrom(...Array.from({ length: 95 }, (_, i) => String.fromCharCode(32 + i))), minLength: 20, maxLength: 100 });
const bytesArb = (max: number) => fc.uint8Array({ maxLength: max }).map((a) => Buffer.from(a));
/** Noise around the secret, rich in escape markers and hex digits to stress boundaries. */
const noiseArb = fc.string({ unit: fc.constantFrom(...'ab AB09%#&;\\u5fx:/+=-_"'.split('')), maxLength: 12 });

type Encoder = (secret: string, choices: number[]) => string;
const pick = (choices: number[], i: number) => choices[i % choices.length]!;

/** Ways a vendor may write the secret; choices drive which characters are escaped and how. */
const ENCODERS: Record<string, Encoder> = {
  raw: (s) => s,
  percentSome: (s, c) => [...s].map((ch, i) => (pick(c, i) % 2 === 0 ? percentAll(ch, pick(c, i + 1) % 2 === 0) : ch)).join(''),
  percentAll: (s, c) => percentAll(s, pick(c, 0) % 2 === 0),
  unicodeSome: (s, c) => [...s].map((ch, i) => (pick(c, i) % 2 === 0 ? unicodeAll(ch, pick(c, i + 1) % 2 === 0) : ch)).join(''),
  htmlSome: (s, c) => [...s].map((ch, i) => (pick(c, i) % 3 === 0 ? `&#${ch.charCodeAt(0)};` : pick(c, i) % 3 === 1 ? `&#x${ch.charCodeAt(0).toString(16)};` : ch)).join(''),
  base64Blob: (s, c) => b64(Buffer.concat([Buffer.alloc(pick(c, 0) % 5, pick(c, 1)), Buffer.from(s), Buffer.alloc(pick(c, 2) % 5, pick(c, 3))])),
  base64urlBlob: (s, c) => b64url(Buffer.concat([Buffer.alloc(pick(c, 0) % 5, pick(c, 1)), Buffer.from(s), Buffer.alloc(pick(c, 2) % 5, pick(c, 3))])),
  basic: (s, c) => `Basic ${b64(`${'user'.slice(0, pick(c, 0) % 5)}:${s}`)}`,
  base64ThenSlashEscaped: (s, c) => b64(Buffer.concat([Buffer.alloc(pick(c, 0) % 3, 0xff), Buffer.from(s)])).replaceAll('/', '\\/'),
  base64ThenPercent: (s, c) => encodeURIComponent(b64(Buffer.concat([Buffer.alloc(pick(c, 0) % 3, 0xfb), Buffer.from(s)]))),
  hex: (s, c) => (pick(c, 0) % 2 === 0 ? Buffer.from(s).toString('hex') : Buffer.from(s).toString('hex').toUpperCase()),
  percentInsideUnicode: (s, c) => ENCODERS.unicodeSome!(ENCODERS.percentSome!(s, c), c.slice(1)),
  doublePercent: (s, c) => ENCODERS.percentSome!(s, c).replaceAll('%', '%25'),
};

/** Containers the encoded secret is placed in: JSON string values, text, form bodies, HTML. */
function contain(kind: number, encoded: string, before: string, after: string, json: unknown): string {
  const inString = (text: string) => JSON.stringify(text).slice(1, -1);
  switch (kind % 4) {
    case 0: {
      const doc = JSON.stringify({ before: json, echo: '\u0000MARK\u0000', after: json });
      // The encoded secret is spliced in verbatim (its escapes are the vendor's), noise JSON-escaped.
      return doc.replace('\\u0000MARK\\u0000', () => `${inString(before)}${encoded}${inString(after)}`);
    }
    case 1:
      return `${before}${encoded}${after}`;
    case 2:
      return `amount=100&echo=${encodeURIComponent(before)}${encoded}${encodeURIComponent(after)}&currency=usd`;
    default:
      return `<html><body><p>${before.replace(/[<&]/g, '')}${encoded}${after.replace(/[<&]/g, '')}</p></body></html>`;
  }
}

describe('properties', () => {
  it('no scrubbed answer holds any decodable form of the secret ([A-Za-z0-9_] secrets)', () => {
    fc.assert(
      fc.property(
        secretArb,
        fc.constantFrom(...Object.keys(ENCODERS)),
        fc.array(fc.nat(255), { minLength: 1, maxLength: 64 }),
        fc.nat(3),
        noiseArb,
        noiseArb,
        fc.jsonValue({ maxDepth: 2 }),
        (secret, encoder, choices, kind, before, after, json) => {
          const body = contain(kind, ENCODERS[encoder]!(secret, choices), before, after, json);
          const forms = secretFormsFor([secret]);
          const input = Buffer.from(body, 'utf8');
          // Noise may swallow a character of the secret (a "%a" before "A%41…"): no client sees it then.
          fc.pre(decodableSecret(input, secret) !== null);
          const out = scrubBody(input, forms);
          expect(out, `refused ${encoder} in ${body}`).not.toBeNull();
          expect(decodableSecret(out!, secret), `${encoder}: ${out!.toString('latin1')}`).toBeNull();
          if (kind % 4 === 0) expect(() => JSON.parse(out!.toString('utf8'))).not.toThrow();
          // Gzipped, then decoded as the proxy does: the same answer.
          const decoded = decodeContent('gzip', gzipSync(input), 1 << 20);
          expect(decoded.ok && scrubBody(decoded.body, forms)?.equals(out!)).toBe(true);
          // The same text as a header value.
          if (!/[\r\n\0]/.test(body)) {
            const header = scrubHeaderValue(body, forms);
            expect(header).not.toBeNull();
            expect(decodableSecret(header!, secret)).toBeNull();
          }
        },
      ),
      { numRuns: 1500 },
    );
  });

  let refusedPrintable = 0;
  it('the same for any printable-ASCII secret (base64 "+", "/", "-", "_" in the determined characters)', () => {
    fc.assert(
      fc.property(printableSecretArb, fc.constantFrom(...Object.keys(ENCODERS)), fc.array(fc.nat(255), { minLength: 1, maxLength: 64 }), fc.nat(3), noiseArb, noiseArb, (secret, encoder, choices, kind, before, after) => {
        const input = Buffer.from(contain(kind, ENCODERS[encoder]!(secret, choices), before, after, null));
        const out = scrubBody(input, secretFormsFor([secret]));
        if (out === null) refusedPrintable++;
        // A secret made of escape characters may be refused (fail closed) rather than redacted; never leaked.
        if (out !== null) expect(decodableSecret(out, secret), `${encoder}: ${out.toString('latin1')}`).toBeNull();
      }),
      { numRuns: 800 },
    );
    // Refusal is the exception, not the way secrets are kept out.
    expect(refusedPrintable).toBeLessThan(40);
  });

  it('inside a random base64 blob at a random position (any alignment)', () => {
    fc.assert(
      fc.property(secretArb, bytesArb(40), bytesArb(40), fc.boolean(), (secret, before, after, url) => {
        const blob = Buffer.concat([before, Buffer.from(secret), after]).toString(url ? 'base64url' : 'base64');
        const out = scrubBody(Buffer.from(`{"data":"${blob}"}`), secretFormsFor([secret]));
        expect(out).not.toBeNull();
        expect(decodableSecret(out!, secret)).toBeNull();
      }),
      { numRuns: 1000 },
    );
  });

  it('changes nothing in an answer without the secret', () => {
    fc.assert(
      fc.property(secretArb, fc.jsonValue(), (secret, json) => {
        const body = Buffer.from(JSON.stringify(json));
        expect(scrubBody(body, secretFormsFor([secret]))).toBe(body);
      }),
      { numRuns: 500 },
    );
  });
});
