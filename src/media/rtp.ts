/**
 * RTP as the media application handles it: the caller's G.711 audio (RFC 3551) and RFC 4733
 * telephone events arrive on a UDP socket of ours (rtpengine's "B side"); nothing here sends audio
 * to a caller, rtpengine plays the files.
 */

export interface RtpPacket {
  payloadType: number;
  marker: boolean;
  sequence: number;
  timestamp: number;
  ssrc: number;
  payload: Buffer;
}

/** Parses an RTP packet (version 2); undefined for anything else (RTCP, garbage). */
export function parseRtp(data: Buffer): RtpPacket | undefined {
  if (data.length < 12 || data[0] >> 6 !== 2) return undefined;
  const payloadType = data[1] & 0x7f;
  // RTCP shares the port when rtcp-mux is on: its packet types 200–204 read as payload types 72–76.
  if (payloadType >= 72 && payloadType <= 76) return undefined;
  const csrcCount = data[0] & 0x0f;
  let offset = 12 + csrcCount * 4;
  if (data[0] & 0x10) {
    if (data.length < offset + 4) return undefined;
    offset += 4 + data.readUInt16BE(offset + 2) * 4;
  }
  let end = data.length;
  if (data[0] & 0x20) end -= data[data.length - 1];
  if (end < offset) return undefined;
  return {
    payloadType,
    marker: (data[1] & 0x80) !== 0,
    sequence: data.readUInt16BE(2),
    timestamp: data.readUInt32BE(4),
    ssrc: data.readUInt32BE(8),
    payload: data.subarray(offset, end),
  };
}

export function buildRtp(packet: Omit<RtpPacket, "marker"> & { marker?: boolean }): Buffer {
  const header = Buffer.alloc(12);
  header[0] = 0x80;
  header[1] = (packet.marker ? 0x80 : 0) | (packet.payloadType & 0x7f);
  header.writeUInt16BE(packet.sequence & 0xffff, 2);
  header.writeUInt32BE(packet.timestamp >>> 0, 4);
  header.writeUInt32BE(packet.ssrc >>> 0, 8);
  return Buffer.concat([header, packet.payload]);
}

/** An RFC 4733 named event: digit, whether this packet ends it, its duration in timestamp units. */
export interface TelephoneEvent {
  digit: string;
  end: boolean;
  duration: number;
}

const EVENT_DIGITS = "0123456789*#ABCD";

export function parseTelephoneEvent(payload: Buffer): TelephoneEvent | undefined {
  if (payload.length < 4 || payload[0] >= EVENT_DIGITS.length) return undefined;
  return { digit: EVENT_DIGITS[payload[0]], end: (payload[1] & 0x80) !== 0, duration: payload.readUInt16BE(2) };
}

export function telephoneEventPayload(digit: string, end: boolean, duration: number): Buffer {
  const payload = Buffer.alloc(4);
  payload[0] = EVENT_DIGITS.indexOf(digit);
  payload[1] = (end ? 0x80 : 0) | 10;
  payload.writeUInt16BE(duration, 2);
  return payload;
}

const ULAW_TABLE = new Int16Array(256);
const ALAW_TABLE = new Int16Array(256);
for (let i = 0; i < 256; i++) {
  const u = ~i & 0xff;
  const t = (((u & 0x0f) << 3) + 0x84) << ((u & 0x70) >> 4);
  ULAW_TABLE[i] = u & 0x80 ? 0x84 - t : t - 0x84;
  const a = i ^ 0x55;
  const seg = (a & 0x70) >> 4;
  let value = (a & 0x0f) << 4;
  value += seg === 0 ? 8 : 0x108;
  if (seg > 1) value <<= seg - 1;
  ALAW_TABLE[i] = a & 0x80 ? value : -value;
}

/** G.711 to 16-bit linear PCM: PCMU (payload type 0) or PCMA (8). */
export function decodeG711(payload: Buffer, payloadType: number): Int16Array {
  const table = payloadType === 8 ? ALAW_TABLE : ULAW_TABLE;
  const out = new Int16Array(payload.length);
  for (let i = 0; i < payload.length; i++) out[i] = table[payload[i]];
  return out;
}

/** 16-bit linear to µ-law (G.711 PCMU), for test phones and tone generators. */
export function encodeUlaw(sample: number): number {
  const BIAS = 0x84;
  let s = Math.max(-32635, Math.min(32635, Math.round(sample)));
  const sign = s < 0 ? 0x80 : 0;
  if (s < 0) s = -s;
  s += BIAS;
  let exponent = 7;
  for (let mask = 0x4000; (s & mask) === 0 && exponent > 0; mask >>= 1) exponent--;
  const mantissa = (s >> (exponent + 3)) & 0x0f;
  return ~(sign | (exponent << 4) | mantissa) & 0xff;
}
