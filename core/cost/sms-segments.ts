/**
 * How many SMS segments a body is billed as, counted the way carriers (and Twilio's
 * `num_segments`) count them. GSM-7 fits 160 septets in one segment and 153 per segment once
 * split (the rest is the concatenation header); the extension characters take two septets
 * (escape + char) and are never split across segments. One character outside GSM-7 makes the
 * whole message UCS-2: 70 UTF-16 code units in one segment, 67 once split, never splitting a
 * surrogate pair. The test simulators count the same rules another way (encoding to septets or
 * UTF-16 bytes and cutting the stream), and a property test holds the two to the same answers.
 */

// The GSM 03.38 default alphabet (the escape character 0x1B itself is left out: it is not text).
const GSM7_BASIC: ReadonlySet<string> = new Set(
  '@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !"#¤%&\'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà',
);
// The extension table: form feed and ^ { } \ [ ~ ] | €.
const GSM7_EXTENSION: ReadonlySet<string> = new Set('\f^{}\\[~]|€');

export type SmsEncoding = 'GSM-7' | 'UCS-2';

export interface SegmentCount {
  readonly encoding: SmsEncoding;
  readonly segments: number;
  /** Septets for GSM-7, UTF-16 code units for UCS-2. */
  readonly units: number;
}

export const GSM7_SINGLE_SEGMENT = 160;
export const GSM7_MULTI_SEGMENT = 153;
export const UCS2_SINGLE_SEGMENT = 70;
export const UCS2_MULTI_SEGMENT = 67;

export function isGsm7(body: string): boolean {
  for (const char of body) if (!GSM7_BASIC.has(char) && !GSM7_EXTENSION.has(char)) return false;
  return true;
}

/** Packs indivisible units (sizes) greedily into segments of `capacity`. */
function packSegments(sizes: readonly number[], capacity: number): number {
  let segments = 1;
  let used = 0;
  for (const size of sizes) {
    if (used + size > capacity) {
      segments += 1;
      used = 0;
    }
    used += size;
  }
  return segments;
}

export function countSegments(body: string): SegmentCount {
  const gsm = isGsm7(body);
  // One entry per indivisible unit: a character's septets, or a code point's UTF-16 units.
  const sizes = [...body].map((char) => (gsm ? (GSM7_EXTENSION.has(char) ? 2 : 1) : char.length));
  const units = sizes.reduce((sum, size) => sum + size, 0);
  const [single, multi] = gsm ? [GSM7_SINGLE_SEGMENT, GSM7_MULTI_SEGMENT] : [UCS2_SINGLE_SEGMENT, UCS2_MULTI_SEGMENT];
  const segments = units <= single ? 1 : packSegments(sizes, multi);
  return { encoding: gsm ? 'GSM-7' : 'UCS-2', segments, units };
}
