/**
 * JSON for pricing: RFC 8259 JSON, refusing a repeated object key. JSON.parse keeps the last of
 * `{"to": [...3 addresses], "to": "one"}` while another parser may keep the first, so a repeated
 * key is two readings of one request and is refused. Objects come back without a prototype, so
 * a `__proto__` key is just a key. parseStrictJson refuses as the cost model does;
 * parseStrictJsonText, for everything else that reads JSON from a user or an operator, throws a
 * plain StrictJsonError for its caller to map.
 */
import { malformed } from './refusal.js';
import { quote } from '../quote.js';

export type JsonValue = null | boolean | number | string | readonly JsonValue[] | JsonObject;
export interface JsonObject {
  readonly [key: string]: JsonValue;
}

const MAX_DEPTH = 64;
/**
 * Values (strings, numbers, objects, … each counts one) a document may hold: a Resend batch of
 * 100 emails with 50 recipients in each of to, cc and bcc is ~16,000. The cost of reading grows
 * with the values, not only the bytes: a 1 MiB document of tiny objects took 140 ms; this bound
 * keeps the largest accepted one near 10 ms.
 */
export const MAX_JSON_VALUES = 20_000;
const NUMBER = /-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?/y;
const LITERALS: ReadonlyArray<readonly [string, JsonValue]> = [['true', true], ['false', false], ['null', null]];

/** What is wrong with a refused document, beyond the message. */
interface Refusal {
  /** Not RFC 8259 JSON: what and where ("unexpected end at offset 12"). */
  readonly syntax?: string;
  /** The object key given more than once. */
  readonly repeatedKey?: string;
}

/** Makes the error for a refused document: `problem` follows `what` ("is not valid JSON: …"). */
type Refuse = (what: string, problem: string, refusal: Refusal) => Error;

const refuseAsCostModel: Refuse = (what, problem) => malformed(`${what} ${problem}`);

class Parser {
  private index = 0;
  private values = 0;

  constructor(
    private readonly text: string,
    private readonly what: string,
    private readonly refuse: Refuse = refuseAsCostModel,
  ) {}

  parseDocument(): JsonValue {
    const value = this.value(0);
    this.skipWhitespace();
    if (this.index !== this.text.length) throw this.fail('unexpected text after the JSON value');
    return value;
  }

  private fail(problem: string): Error {
    const syntax = `${problem} at offset ${this.index}`;
    return this.refuse(this.what, `is not valid JSON: ${syntax}`, { syntax });
  }

  private skipWhitespace(): void {
    while (this.index < this.text.length) {
      const char = this.text.charCodeAt(this.index);
      if (char !== 0x20 && char !== 0x09 && char !== 0x0a && char !== 0x0d) return;
      this.index += 1;
    }
  }

  private value(depth: number): JsonValue {
    if (depth > MAX_DEPTH) throw this.fail(`nested deeper than ${MAX_DEPTH} levels`);
    if (++this.values > MAX_JSON_VALUES) throw this.fail(`more than ${MAX_JSON_VALUES} values`);
    this.skipWhitespace();
    const char = this.text[this.index];
    if (char === '{') return this.object(depth);
    if (char === '[') return this.array(depth);
    if (char === '"') return this.string();
    for (const [literal, value] of LITERALS) {
      if (this.text.startsWith(literal, this.index)) {
        this.index += literal.length;
        return value;
      }
    }
    NUMBER.lastIndex = this.index;
    const match = NUMBER.exec(this.text);
    if (match === null) throw this.fail(char === undefined ? 'unexpected end' : `unexpected ${JSON.stringify(char)}`);
    this.index += match[0].length;
    return Number(match[0]);
  }

  private string(): string {
    const start = this.index;
    let i = start + 1;
    for (;;) {
      const char = this.text.charCodeAt(i);
      if (Number.isNaN(char)) throw this.fail('unterminated string');
      if (char === 0x22) break;
      i += char === 0x5c ? 2 : 1;
    }
    this.index = i + 1;
    try {
      // The token is delimited; JSON.parse checks its escapes and control characters exactly.
      return JSON.parse(this.text.slice(start, i + 1)) as string;
    } catch {
      this.index = start;
      throw this.fail('malformed string');
    }
  }

  private expect(char: string): void {
    this.skipWhitespace();
    if (this.text[this.index] !== char) throw this.fail(`expected ${JSON.stringify(char)}`);
    this.index += 1;
  }

  /** True (and consumed) when the next character closes the container. */
  private closes(char: string): boolean {
    this.skipWhitespace();
    if (this.text[this.index] !== char) return false;
    this.index += 1;
    return true;
  }

  private array(depth: number): JsonValue[] {
    this.index += 1;
    const items: JsonValue[] = [];
    if (this.closes(']')) return items;
    for (;;) {
      items.push(this.value(depth + 1));
      if (this.closes(']')) return items;
      this.expect(',');
    }
  }

  private object(depth: number): JsonObject {
    this.index += 1;
    const object = Object.create(null) as Record<string, JsonValue>;
    if (this.closes('}')) return object;
    for (;;) {
      this.skipWhitespace();
      if (this.text[this.index] !== '"') throw this.fail('expected a property name');
      const key = this.string();
      if (Object.hasOwn(object, key)) throw this.refuse(this.what, `gives the property ${quote(key)} more than once`, { repeatedKey: key });
      this.expect(':');
      object[key] = this.value(depth + 1);
      if (this.closes('}')) return object;
      this.expect(',');
    }
  }
}

const UTF8 = new TextDecoder('utf-8', { fatal: true });

/** Parses UTF-8 JSON bytes; every problem is a `request_malformed` refusal naming `what`. */
export function parseStrictJson(bytes: Uint8Array, what: string): JsonValue {
  let text: string;
  try {
    text = UTF8.decode(bytes);
  } catch {
    throw malformed(`${what} is not valid UTF-8`);
  }
  return new Parser(text, what).parseDocument();
}

/** What parseStrictJsonText throws. `message` is `<what> <problem>`. */
export class StrictJsonError extends Error {
  override readonly name = 'StrictJsonError';
  /** Not RFC 8259 JSON: what and where ("unexpected end at offset 12"). */
  readonly syntax: string | undefined;
  /** The object key given more than once. */
  readonly repeatedKey: string | undefined;

  constructor(
    readonly what: string,
    /** "is not valid JSON: unexpected end at offset 12", or "gives the property \"a\" more than once". */
    readonly problem: string,
    refusal: Refusal,
  ) {
    super(`${what} ${problem}`);
    this.syntax = refusal.syntax;
    this.repeatedKey = refusal.repeatedKey;
  }
}

/**
 * Parses JSON text by the same rules as parseStrictJson (a repeated key, nesting deeper than 64
 * levels, anything outside RFC 8259 refused; objects without a prototype), throwing a
 * StrictJsonError naming `what` instead of a cost-model refusal.
 */
export function parseStrictJsonText(text: string, what: string): JsonValue {
  return new Parser(text, what, (name, problem, refusal) => new StrictJsonError(name, problem, refusal)).parseDocument();
}

export function isJsonObject(value: JsonValue | undefined): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

export function isJsonArray(value: JsonValue | undefined): value is readonly JsonValue[] {
  return Array.isArray(value);
}
