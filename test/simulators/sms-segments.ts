/**
 * The simulated Twilio's `num_segments`, computed the way a carrier builds the PDUs, on purpose
 * NOT the way core/cost/sms-segments.ts counts (so that the property test comparing the two
 * means something): the body is encoded to real GSM 03.38 septet codes (0x1B escape + code for
 * the extension table) or to UTF-16BE bytes, and the encoded stream is cut into user-data parts
 * of 160 septets / 140 bytes, or 153 septets / 134 bytes once a concatenation header is needed.
 * A cut that would separate an escape from its character, or a high surrogate from its low one,
 * moves back by one unit.
 */

const ESC = 0x1b;
/** GSM 03.38 default alphabet in code order; index 0x1B is the escape (never text). */
const DEFAULT_ALPHABET =
  '@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞ\u001bÆæßÉ !"#¤%&\'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà';
/** The extension table: character → code after the escape. */
const EXTENSION: ReadonlyMap<string, number> = new Map([
  ['\f', 0x0a], ['^', 0x14], ['{', 0x28], ['}', 0x29], ['\\', 0x2f], ['[', 0x3c], ['~', 0x3d], [']', 0x3e], ['|', 0x40], ['€', 0x65],
]);

export type SmsEncoding = 'GSM-7' | 'UCS-2';

export interface SegmentCount {
  encoding: SmsEncoding;
  segments: number;
  /** Septets for GSM-7, UTF-16 code units for UCS-2. */
  units: number;
}

/** The septet codes of `body`, or null when a character has none (the message must be UCS-2). */
function toSeptets(body: string): number[] | null {
  const septets: number[] = [];
  for (let i = 0; i < body.length; i++) {
    const char = body[i]!;
    const code = DEFAULT_ALPHABET.indexOf(char);
    if (code >= 0 && code !== ESC) {
      septets.push(code);
      continue;
    }
    const extended = EXTENSION.get(char);
    if (extended === undefined) return null;
    septets.push(ESC, extended);
  }
  return septets;
}

/** How many parts a stream of `total` units is cut into; `unsplittable(i)` says a cut before unit i is not allowed. */
function cutCount(total: number, single: number, multi: number, unsplittable: (i: number) => boolean): number {
  if (total <= single) return 1;
  let parts = 0;
  for (let start = 0; start < total; parts++) {
    let end = Math.min(total, start + multi);
    if (end < total && unsplittable(end)) end -= 1;
    start = end;
  }
  return parts;
}

export function isGsm7(body: string): boolean {
  return toSeptets(body) !== null;
}

export function countSegments(body: string): SegmentCount {
  const septets = toSeptets(body);
  if (septets !== null) {
    // A cut right after an escape would leave the escape alone at the end of a part.
    // No extension code is 0x1B, so a unit equal to ESC is always an escape.
    const segments = cutCount(septets.length, 160, 153, (i) => septets[i - 1] === ESC);
    return { encoding: 'GSM-7', segments, units: septets.length };
  }
  const bytes = Buffer.from(body, 'utf16le').swap16();
  const units = bytes.length / 2;
  // A high surrogate (0xD800-0xDBFF) followed by a low one (0xDC00-0xDFFF) is one character.
  const high = (i: number) => (bytes[2 * i]! & 0xfc) === 0xd8;
  const low = (i: number) => (bytes[2 * i]! & 0xfc) === 0xdc;
  const segments = cutCount(units, 70, 67, (i) => low(i) && high(i - 1));
  return { encoding: 'UCS-2', segments, units };
}
