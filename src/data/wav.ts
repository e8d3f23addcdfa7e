/**
 * WAV (RIFF/WAVE) decoding and encoding, and band-limited resampling to 16 kHz.
 *
 * Decoding reads the chunks of a RIFF/WAVE file (skipping LIST, fact, cue and any other chunk, honouring the pad
 * byte after odd-sized chunks) and accepts:
 *   - WAVE_FORMAT_PCM (1):        8-bit unsigned, 16/24/32-bit signed little-endian integers,
 *   - WAVE_FORMAT_IEEE_FLOAT (3): 32/64-bit floats,
 *   - WAVE_FORMAT_EXTENSIBLE (0xFFFE) whose sub-format GUID is PCM or IEEE float (valid bits ≤ container bits).
 * Integer samples map to [-1, 1) by dividing by 2^(bits-1) (8-bit: (b - 128) / 128). Any channel count decodes;
 * `mono` is the mean of the channels. A data chunk whose declared size runs past the end of the file (streamed
 * writers leave 0 or 0xFFFFFFFF there) is read up to the last whole frame present.
 *
 * Resampling (`resample`) is a windowed-sinc low-pass evaluated at each output instant (Kaiser window, ≈90 dB
 * stop-band rejection): the cut-off sits between 0.45× and 0.5× of the lower of the two rates, so content
 * above the target's Nyquist frequency is removed instead of aliasing. For rational ratios with a small
 * denominator (44.1→16 kHz is 160/441, 48→16 kHz is 1/3) the taps are tabulated once per output phase (a polyphase
 * filter); every phase's taps are normalised to sum to 1 so DC and low frequencies keep their amplitude exactly.
 *
 * Encoding (`encodeWav`) writes 16-bit PCM by default (what `audio.wav` in a clip uses) and, for tests and
 * interchange, any of the decodable formats.
 */

export class WavError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'WavError';
  }
}

export type SampleFormat =
  | { kind: 'int'; bits: 8 | 16 | 24 | 32 }
  | { kind: 'float'; bits: 32 | 64 };

export interface DecodedWav {
  sampleRate: number;
  /** One Float32Array per channel, values in [-1, 1] for integer formats. */
  channels: Float32Array[];
  /** Mean of the channels (the channel itself for mono input). */
  mono: Float32Array;
  format: SampleFormat;
  /** True when the file used WAVE_FORMAT_EXTENSIBLE. */
  extensible: boolean;
}

const FORMAT_PCM = 1;
const FORMAT_FLOAT = 3;
const FORMAT_EXTENSIBLE = 0xfffe;
// The sub-format GUIDs of WAVE_FORMAT_EXTENSIBLE are XXXXXXXX-0000-0010-8000-00aa00389b71 with the format code first.
const GUID_TAIL = [0x00, 0x00, 0x00, 0x00, 0x10, 0x00, 0x80, 0x00, 0x00, 0xaa, 0x00, 0x38, 0x9b, 0x71];

function fourcc(bytes: Uint8Array, at: number): string {
  return String.fromCharCode(bytes[at]!, bytes[at + 1]!, bytes[at + 2]!, bytes[at + 3]!);
}

/** Decodes a WAV file. `name` (e.g. the file path) prefixes error messages. */
export function decodeWav(bytes: Uint8Array, name = 'wav'): DecodedWav {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (bytes.length < 12) throw new WavError(`${name}: not a WAV file (only ${bytes.length} bytes)`);
  const riff = fourcc(bytes, 0);
  if (riff === 'RIFX' || riff === 'RF64') throw new WavError(`${name}: unsupported ${riff} container (only little-endian RIFF/WAVE)`);
  if (riff !== 'RIFF' || fourcc(bytes, 8) !== 'WAVE') {
    throw new WavError(`${name}: not a WAV file (expected "RIFF....WAVE" header, got "${riff}....${fourcc(bytes, 8)}")`);
  }
  let fmt: { tag: number; channels: number; sampleRate: number; blockAlign: number; bits: number; subTag: number | null; validBits: number } | null = null;
  let data: { offset: number; length: number } | null = null;
  let at = 12;
  while (at + 8 <= bytes.length) {
    const id = fourcc(bytes, at);
    const size = view.getUint32(at + 4, true);
    const body = at + 8;
    if (id === 'fmt ') {
      if (size < 16 || body + 16 > bytes.length) throw new WavError(`${name}: fmt chunk too short (${size} bytes)`);
      const tag = view.getUint16(body, true);
      const channels = view.getUint16(body + 2, true);
      const sampleRate = view.getUint32(body + 4, true);
      const blockAlign = view.getUint16(body + 12, true);
      const bits = view.getUint16(body + 14, true);
      let subTag: number | null = null;
      let validBits = bits;
      if (tag === FORMAT_EXTENSIBLE) {
        if (size < 40 || body + 40 > bytes.length) throw new WavError(`${name}: WAVE_FORMAT_EXTENSIBLE fmt chunk too short (${size} bytes, need 40)`);
        validBits = view.getUint16(body + 18, true) || bits;
        if (validBits > bits) throw new WavError(`${name}: ${validBits} valid bits in a ${bits}-bit container`);
        subTag = view.getUint16(body + 24, true);
        const tail = bytes.subarray(body + 26, body + 40);
        if (!GUID_TAIL.every((b, i) => tail[i] === b)) throw new WavError(`${name}: WAVE_FORMAT_EXTENSIBLE with an unknown sub-format GUID`);
      }
      fmt = { tag, channels, sampleRate, blockAlign, bits, subTag, validBits };
    } else if (id === 'data') {
      // Streaming writers leave a placeholder size; read what is there, whole frames only (trimmed below).
      const available = bytes.length - body;
      data = { offset: body, length: Math.min(size, available) };
      // A size of 0 is a placeholder only when the RIFF size was never filled in either; else the chunk is empty.
      const riffSize = view.getUint32(4, true);
      const riffPlaceholder = riffSize === 0 || riffSize === 0xffffffff || riffSize + 8 < bytes.length;
      if (size === 0 && available > 0 && riffPlaceholder) data.length = available;
      break;
    }
    at = body + size + (size & 1);
  }
  if (!fmt) throw new WavError(`${name}: no "fmt " chunk before the audio data`);
  if (!data) throw new WavError(`${name}: no "data" chunk`);
  const code = fmt.tag === FORMAT_EXTENSIBLE ? fmt.subTag! : fmt.tag;
  let format: SampleFormat;
  if (code === FORMAT_PCM && (fmt.bits === 8 || fmt.bits === 16 || fmt.bits === 24 || fmt.bits === 32)) {
    format = { kind: 'int', bits: fmt.bits };
  } else if (code === FORMAT_FLOAT && (fmt.bits === 32 || fmt.bits === 64)) {
    format = { kind: 'float', bits: fmt.bits };
  } else {
    const what = code === FORMAT_PCM ? `${fmt.bits}-bit PCM` : code === FORMAT_FLOAT ? `${fmt.bits}-bit float`
      : `format tag 0x${code.toString(16)}${code === 0x11 || code === 2 ? ' (ADPCM)' : code === 6 || code === 7 ? ' (A-law/µ-law)' : ''}`;
    throw new WavError(`${name}: unsupported sample format: ${what} (supported: PCM 8/16/24/32-bit, float 32/64-bit)`);
  }
  if (fmt.channels < 1) throw new WavError(`${name}: fmt chunk declares ${fmt.channels} channels`);
  if (fmt.sampleRate < 1) throw new WavError(`${name}: fmt chunk declares sample rate ${fmt.sampleRate}`);
  const bytesPerSample = fmt.bits / 8;
  if (fmt.blockAlign !== bytesPerSample * fmt.channels) {
    throw new WavError(`${name}: block align ${fmt.blockAlign} does not match ${fmt.channels} channel(s) × ${bytesPerSample} bytes`);
  }
  const frames = Math.floor(data.length / fmt.blockAlign);
  const channels = Array.from({ length: fmt.channels }, () => new Float32Array(frames));
  for (let i = 0; i < frames; i++) {
    for (let c = 0; c < fmt.channels; c++) {
      const p = data.offset + i * fmt.blockAlign + c * bytesPerSample;
      let v: number;
      if (format.kind === 'float') v = format.bits === 32 ? view.getFloat32(p, true) : view.getFloat64(p, true);
      else if (format.bits === 8) v = (bytes[p]! - 128) / 128;
      else if (format.bits === 16) v = view.getInt16(p, true) / 32768;
      else if (format.bits === 24) v = (((bytes[p]! | (bytes[p + 1]! << 8) | (bytes[p + 2]! << 16)) << 8) >> 8) / 8388608;
      else v = view.getInt32(p, true) / 2147483648;
      channels[c]![i] = v;
    }
  }
  let mono: Float32Array;
  if (fmt.channels === 1) mono = channels[0]!;
  else {
    mono = new Float32Array(frames);
    for (let i = 0; i < frames; i++) {
      let s = 0;
      for (let c = 0; c < fmt.channels; c++) s += channels[c]![i]!;
      mono[i] = s / fmt.channels;
    }
  }
  return { sampleRate: fmt.sampleRate, channels, mono, format, extensible: fmt.tag === FORMAT_EXTENSIBLE };
}

export interface EncodeWavOptions {
  /** Sample format; 16-bit PCM by default. */
  format?: SampleFormat;
  /** Write WAVE_FORMAT_EXTENSIBLE instead of the plain format tag. */
  extensible?: boolean;
}

/**
 * Encodes one or more channels (equal lengths) as a WAV file. Integer formats clip to [-1, 1] and round to
 * nearest; 8-bit is unsigned with 128 as zero.
 */
export function encodeWav(channels: Float32Array | Float32Array[], sampleRate: number, options: EncodeWavOptions = {}): Uint8Array {
  const chans = Array.isArray(channels) ? channels : [channels];
  const format = options.format ?? { kind: 'int', bits: 16 };
  if (chans.length < 1) throw new WavError('encodeWav: no channels');
  const frames = chans[0]!.length;
  for (const [c, ch] of chans.entries()) {
    if (ch.length !== frames) throw new WavError(`encodeWav: channel ${c} has ${ch.length} samples, channel 0 has ${frames}`);
  }
  if (!Number.isInteger(sampleRate) || sampleRate < 1) throw new WavError(`encodeWav: sample rate must be a positive integer, got ${sampleRate}`);
  const bytesPerSample = format.bits / 8;
  const blockAlign = bytesPerSample * chans.length;
  const extensible = options.extensible ?? false;
  const fmtSize = extensible ? 40 : 16;
  const dataSize = frames * blockAlign;
  const total = 12 + 8 + fmtSize + 8 + dataSize + (dataSize & 1);
  const bytes = new Uint8Array(total);
  const view = new DataView(bytes.buffer);
  const put4cc = (at: number, s: string) => { for (let i = 0; i < 4; i++) bytes[at + i] = s.charCodeAt(i); };
  put4cc(0, 'RIFF');
  view.setUint32(4, total - 8, true);
  put4cc(8, 'WAVE');
  put4cc(12, 'fmt ');
  view.setUint32(16, fmtSize, true);
  const code = format.kind === 'int' ? FORMAT_PCM : FORMAT_FLOAT;
  view.setUint16(20, extensible ? FORMAT_EXTENSIBLE : code, true);
  view.setUint16(22, chans.length, true);
  view.setUint32(24, sampleRate, true);
  view.setUint32(28, sampleRate * blockAlign, true);
  view.setUint16(32, blockAlign, true);
  view.setUint16(34, format.bits, true);
  if (extensible) {
    view.setUint16(36, 22, true);            // cbSize
    view.setUint16(38, format.bits, true);   // valid bits per sample
    view.setUint32(40, 0, true);             // channel mask: unspecified
    view.setUint16(44, code, true);
    bytes.set(GUID_TAIL, 46);
  }
  const dataAt = 12 + 8 + fmtSize;
  put4cc(dataAt, 'data');
  view.setUint32(dataAt + 4, dataSize, true);
  let p = dataAt + 8;
  const clip = (v: number) => (v > 1 ? 1 : v < -1 ? -1 : v);
  for (let i = 0; i < frames; i++) {
    for (const ch of chans) {
      const v = ch[i]!;
      if (format.kind === 'float') {
        if (format.bits === 32) view.setFloat32(p, v, true); else view.setFloat64(p, v, true);
      } else if (format.bits === 8) {
        bytes[p] = Math.min(255, Math.round(clip(v) * 128) + 128);
      } else if (format.bits === 16) {
        view.setInt16(p, Math.min(32767, Math.round(clip(v) * 32768)), true);
      } else if (format.bits === 24) {
        const q = Math.min(8388607, Math.round(clip(v) * 8388608));
        bytes[p] = q & 0xff; bytes[p + 1] = (q >> 8) & 0xff; bytes[p + 2] = (q >> 16) & 0xff;
      } else {
        view.setInt32(p, Math.min(2147483647, Math.round(clip(v) * 2147483648)), true);
      }
      p += bytesPerSample;
    }
  }
  return bytes;
}

function gcd(a: number, b: number): number {
  while (b) [a, b] = [b, a % b];
  return a;
}

/** Zeroth-order modified Bessel function of the first kind (power series; converges fast for the β used here). */
function besselI0(x: number): number {
  let sum = 1, term = 1;
  const q = (x * x) / 4;
  for (let k = 1; k < 60; k++) {
    term *= q / (k * k);
    sum += term;
    if (term < sum * 1e-17) break;
  }
  return sum;
}

export interface ResampleOptions {
  /** Stop-band attenuation target in dB (sets the Kaiser β and the filter length). Default 90. */
  attenuationDb?: number;
  /** Pass-band edge as a fraction of the lower Nyquist frequency; the stop band starts at that Nyquist. Default 0.9. */
  passband?: number;
}

/**
 * Resamples a mono signal from `fromRate` to `toRate` with a Kaiser-windowed sinc low-pass (see file header).
 * Output length is ceil(n · toRate / fromRate); output sample j sits at input time j · fromRate / toRate; the
 * signal is taken as zero outside its ends.
 */
export function resample(input: Float32Array, fromRate: number, toRate: number, options: ResampleOptions = {}): Float32Array {
  if (!(Number.isInteger(fromRate) && fromRate > 0 && Number.isInteger(toRate) && toRate > 0)) {
    throw new WavError(`resample: rates must be positive integers, got ${fromRate} → ${toRate}`);
  }
  if (fromRate === toRate) return input.slice();
  const attenuation = options.attenuationDb ?? 90;
  const passband = options.passband ?? 0.9;
  const g = gcd(fromRate, toRate);
  const up = toRate / g, down = fromRate / g;     // output j ↔ input time j·down/up
  const ratio = Math.min(1, toRate / fromRate);   // lower Nyquist as a fraction of the input Nyquist
  // Band edges in cycles per input sample: pass band to passband·0.5·ratio, stop band from 0.5·ratio.
  const transition = 0.5 * ratio * (1 - passband);
  const cutoff = 0.5 * ratio * (1 + passband) / 2;
  const beta = attenuation > 50 ? 0.1102 * (attenuation - 8.7) : attenuation > 21 ? 0.5842 * (attenuation - 21) ** 0.4 + 0.07886 * (attenuation - 21) : 0;
  // Kaiser's length formula N = (A − 7.95) / (2.285 · 2π · Δf); halfWidth in input samples.
  const halfWidth = Math.ceil((attenuation - 7.95) / (2.285 * 2 * Math.PI * transition) / 2);
  const i0Beta = besselI0(beta);
  const tapsPerPhase = 2 * halfWidth + 1;
  const outLength = Math.ceil((input.length * up) / down);
  const output = new Float32Array(outLength);

  // Taps for an output instant whose fractional offset from input sample `base` is frac ∈ [0, 1):
  // taps[m] weights input[base - halfWidth + m], at distance (m - halfWidth - frac) from the instant.
  const computeTaps = (frac: number, taps: Float64Array) => {
    let sum = 0;
    for (let m = 0; m < tapsPerPhase; m++) {
      const t = m - halfWidth - frac;
      const r = t / (halfWidth + 1);
      const w = Math.abs(r) >= 1 ? 0 : besselI0(beta * Math.sqrt(1 - r * r)) / i0Beta;
      const x = 2 * cutoff * t;
      const sinc = x === 0 ? 1 : Math.sin(Math.PI * x) / (Math.PI * x);
      taps[m] = 2 * cutoff * sinc * w;
      sum += taps[m]!;
    }
    for (let m = 0; m < tapsPerPhase; m++) taps[m]! /= sum;   // unit DC gain per phase
  };
  const tabulate = up <= 4096;
  const table = tabulate ? new Float64Array(up * tapsPerPhase) : null;
  if (table) {
    const tmp = new Float64Array(tapsPerPhase);
    for (let phase = 0; phase < up; phase++) {
      computeTaps(phase / up, tmp);
      table.set(tmp, phase * tapsPerPhase);
    }
  }
  const scratch = new Float64Array(tapsPerPhase);
  const n = input.length;
  for (let j = 0; j < outLength; j++) {
    const num = j * down;
    const base = Math.floor(num / up);
    const phase = num - base * up;
    let taps: Float64Array, off = 0;
    if (table) { taps = table; off = phase * tapsPerPhase; } else { computeTaps(phase / up, scratch); taps = scratch; }
    const start = base - halfWidth;
    const mFrom = Math.max(0, -start), mTo = Math.min(tapsPerPhase, n - start);
    let acc = 0;
    for (let m = mFrom; m < mTo; m++) acc += taps[off + m]! * input[start + m]!;
    output[j] = acc;
  }
  return output;
}

/** Decodes a WAV file and returns its mono mix at `targetRate` (16 kHz by default), resampling when needed. */
export function decodeWavMono(bytes: Uint8Array, targetRate = 16000, name = 'wav'): Float32Array {
  const wav = decodeWav(bytes, name);
  return resample(wav.mono, wav.sampleRate, targetRate);
}
