/**
 * Counts what a gRPC client (a data plane) sends up one TCP connection, by parsing the HTTP/2
 * byte stream client → server: the 24-byte connection preface, then frames (9-byte header:
 * 3-byte length, 1-byte type, 1-byte flags, 4-byte stream id). Payloads of DATA frames are
 * reassembled per stream into gRPC length-prefixed messages (1-byte compressed flag, 4-byte
 * length, protobuf), and each message is classified by its first protobuf tag: the field of
 * the `ConnectRequest` oneof (1 hello, 2 lease_request, 3 usage_report, 4 audit_batch,
 * 6 lease_batch: the lease requests and usage reports of one moment, counted as one message).
 *
 * Nothing is buffered beyond a frame header and a message prefix: payload bytes are skipped
 * as they pass, so large audit batches cost nothing to count.
 */

const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');
const FRAME_HEADER_BYTES = 9;
const FRAME_DATA = 0x0;
const FRAME_HEADERS = 0x1;
const FLAG_PADDED = 0x8;

export type MessageKind = 'hello' | 'leaseRequest' | 'usageReport' | 'auditBatch' | 'leaseBatch' | 'other';

const KIND_BY_FIELD: Readonly<Record<number, MessageKind>> = { 1: 'hello', 2: 'leaseRequest', 3: 'usageReport', 4: 'auditBatch', 6: 'leaseBatch' };

export interface UpstreamCounts {
  /** TCP chunks and bytes relayed client → server. */
  chunks: number;
  bytes: number;
  /** HTTP/2 DATA frames with a non-empty payload, and their payload bytes. */
  dataFrames: number;
  dataBytes: number;
  /** HEADERS frames: one per stream opened (one per Connect call, i.e. per (re)connect). */
  headersFrames: number;
  /** Complete gRPC messages, by ConnectRequest kind. */
  messages: Record<MessageKind, number>;
  /** Bytes that could not be parsed (a bad preface): should stay 0. */
  unparsed: number;
}

export function emptyCounts(): UpstreamCounts {
  return { chunks: 0, bytes: 0, dataFrames: 0, dataBytes: 0, headersFrames: 0, messages: { hello: 0, leaseRequest: 0, usageReport: 0, auditBatch: 0, leaseBatch: 0, other: 0 }, unparsed: 0 };
}

export function addCounts(into: UpstreamCounts, from: UpstreamCounts): UpstreamCounts {
  into.chunks += from.chunks;
  into.bytes += from.bytes;
  into.dataFrames += from.dataFrames;
  into.dataBytes += from.dataBytes;
  into.headersFrames += from.headersFrames;
  into.unparsed += from.unparsed;
  for (const kind of Object.keys(into.messages) as MessageKind[]) into.messages[kind] += from.messages[kind];
  return into;
}

export function diffCounts(after: UpstreamCounts, before: UpstreamCounts): UpstreamCounts {
  const out = emptyCounts();
  out.chunks = after.chunks - before.chunks;
  out.bytes = after.bytes - before.bytes;
  out.dataFrames = after.dataFrames - before.dataFrames;
  out.dataBytes = after.dataBytes - before.dataBytes;
  out.headersFrames = after.headersFrames - before.headersFrames;
  out.unparsed = after.unparsed - before.unparsed;
  for (const kind of Object.keys(out.messages) as MessageKind[]) out.messages[kind] = after.messages[kind] - before.messages[kind];
  return out;
}

export function cloneCounts(counts: UpstreamCounts): UpstreamCounts {
  return addCounts(emptyCounts(), counts);
}

/** gRPC message reassembly state of one HTTP/2 stream. */
interface GrpcStreamState {
  /** Bytes of the 5-byte prefix (plus the first payload byte) collected so far. */
  readonly head: number[];
  /** Payload bytes still to skip for the current message. */
  skip: number;
}

/** One per TCP connection: feed it every client → server chunk, in order. */
export class H2UpstreamTap {
  readonly counts = emptyCounts();
  private prefaceSeen = 0;
  private broken = false;
  /** Current frame: header bytes collected, then payload bytes left. */
  private readonly header: number[] = [];
  private payloadLeft = 0;
  private frameType = -1;
  private frameStream = 0;
  /** For padded DATA frames: the pad-length byte is still to come, then how many trailing pad bytes. */
  private padPending = false;
  private padBytes = 0;
  private readonly streams = new Map<number, GrpcStreamState>();

  feed(chunk: Buffer): void {
    this.counts.chunks++;
    this.counts.bytes += chunk.length;
    if (this.broken) {
      this.counts.unparsed += chunk.length;
      return;
    }
    let i = 0;
    // Bounded: every iteration consumes at least one byte of the chunk.
    while (i < chunk.length) {
      if (this.prefaceSeen < PREFACE.length) {
        if (chunk[i] !== PREFACE[this.prefaceSeen]) {
          this.broken = true;
          this.counts.unparsed += chunk.length - i;
          return;
        }
        this.prefaceSeen++;
        i++;
        continue;
      }
      if (this.payloadLeft === 0 && this.header.length < FRAME_HEADER_BYTES) {
        this.header.push(chunk[i]!);
        i++;
        if (this.header.length === FRAME_HEADER_BYTES) this.startFrame();
        continue;
      }
      // Inside a frame's payload.
      const take = Math.min(this.payloadLeft, chunk.length - i);
      if (this.frameType === FRAME_DATA) this.dataBytes(chunk, i, take);
      i += take;
      this.payloadLeft -= take;
      if (this.payloadLeft === 0) this.header.length = 0;
    }
  }

  private startFrame(): void {
    const h = this.header;
    const length = (h[0]! << 16) | (h[1]! << 8) | h[2]!;
    const type = h[3]!;
    const flags = h[4]!;
    const stream = ((h[5]! & 0x7f) << 24) | (h[6]! << 16) | (h[7]! << 8) | h[8]!;
    this.frameType = type;
    this.frameStream = stream;
    this.payloadLeft = length;
    this.padPending = false;
    this.padBytes = 0;
    if (type === FRAME_HEADERS) this.counts.headersFrames++;
    if (type === FRAME_DATA && length > 0) {
      this.counts.dataFrames++;
      this.counts.dataBytes += length;
      this.padPending = (flags & FLAG_PADDED) !== 0;
    }
    if (length === 0) this.header.length = 0;
  }

  /** `take` payload bytes of the current DATA frame, starting at `chunk[start]`. */
  private dataBytes(chunk: Buffer, start: number, take: number): void {
    let i = start;
    const end = start + take;
    if (this.padPending && i < end) {
      this.padBytes = chunk[i]!;
      this.padPending = false;
      i++;
    }
    // The last `padBytes` bytes of the frame are padding, not data.
    const payloadLeftAfter = this.payloadLeft - take;
    const dataEnd = end - Math.max(0, this.padBytes - payloadLeftAfter);
    if (i >= dataEnd) return;
    let state = this.streams.get(this.frameStream);
    if (state === undefined) {
      state = { head: [], skip: 0 };
      this.streams.set(this.frameStream, state);
    }
    while (i < dataEnd) {
      if (state.skip > 0) {
        const n = Math.min(state.skip, dataEnd - i);
        state.skip -= n;
        i += n;
        continue;
      }
      state.head.push(chunk[i]!);
      i++;
      if (state.head.length === 5) {
        const length = ((state.head[1]! << 24) >>> 0) + (state.head[2]! << 16) + (state.head[3]! << 8) + state.head[4]!;
        if (length === 0) {
          this.counts.messages.other++;
          state.head.length = 0;
        }
      } else if (state.head.length === 6) {
        const length = ((state.head[1]! << 24) >>> 0) + (state.head[2]! << 16) + (state.head[3]! << 8) + state.head[4]!;
        const compressed = state.head[0] !== 0;
        const kind = compressed ? 'other' : (KIND_BY_FIELD[state.head[5]! >> 3] ?? 'other');
        this.counts.messages[kind]++;
        state.skip = length - 1;
        state.head.length = 0;
      }
    }
  }
}
