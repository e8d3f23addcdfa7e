/**
 * Speech with phoneme timings from Festival (Debian's `festival` package), run as a separate program — no GPL code
 * is linked into nerfad. Festival's `utt.save.segs` writes one line per segment with its END time, which gives exact
 * per-phoneme durations that match the waveform it saves. (espeak-ng's command line prints timings only through
 * `--pho` with an mbrola voice, which Debian keeps out of main; its C API would have to be linked, so Festival it is.)
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface PhonemeSegment {
  /** Festival/CMU phone name (`pau` for silence). */
  phoneme: string;
  /** Seconds from the start of the clip. */
  start: number;
  end: number;
}

export interface Speech {
  samples: Float32Array;
  sampleRate: number;
  segments: PhonemeSegment[];
}

export const SETUP_HINT = 'run `bash scripts/setup-synth.sh` (as root) to install it';

/** Parses the text of Festival's `utt.save.segs` file ("#" header, then "END_TIME 100 PHONE" lines). */
export function parseFestivalSegs(text: string, offset = 0): PhonemeSegment[] {
  const segments: PhonemeSegment[] = [];
  let previousEnd = 0;
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line === '#') continue;
    const fields = line.split(/\s+/);
    const end = Number(fields[0]);
    if (fields.length < 3 || !Number.isFinite(end)) throw new Error(`parseFestivalSegs: bad line ${JSON.stringify(raw)}`);
    if (end < previousEnd) throw new Error(`parseFestivalSegs: segment ends go backwards at ${JSON.stringify(raw)}`);
    segments.push({ phoneme: fields[2]!, start: offset + previousEnd, end: offset + end });
    previousEnd = end;
  }
  return segments;
}

/** Reads a mono 16-bit PCM RIFF WAV (what Festival writes) into floats in [-1, 1). */
export function readPcm16Wav(bytes: Uint8Array): { samples: Float32Array; sampleRate: number } {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const tag = (at: number) => String.fromCharCode(...bytes.subarray(at, at + 4));
  if (tag(0) !== 'RIFF' || tag(8) !== 'WAVE') throw new Error('readPcm16Wav: not a RIFF/WAVE file');
  let sampleRate = 0, channels = 0, bits = 0;
  for (let at = 12; at + 8 <= bytes.length;) {
    const id = tag(at), size = view.getUint32(at + 4, true);
    if (id === 'fmt ') {
      channels = view.getUint16(at + 10, true);
      sampleRate = view.getUint32(at + 12, true);
      bits = view.getUint16(at + 22, true);
    } else if (id === 'data') {
      if (bits !== 16 || channels !== 1) throw new Error(`readPcm16Wav: want mono 16-bit, got ${channels} ch ${bits} bit`);
      const count = Math.min(size, bytes.length - at - 8) >> 1;
      const samples = new Float32Array(count);
      for (let i = 0; i < count; i++) samples[i] = view.getInt16(at + 8 + 2 * i, true) / 32768;
      return { samples, sampleRate };
    }
    at += 8 + size + (size & 1);
  }
  throw new Error('readPcm16Wav: no data chunk');
}

/** Writes mono float samples as a 16-bit PCM WAV. */
export function writePcm16Wav(samples: Float32Array, sampleRate: number): Uint8Array {
  const bytes = new Uint8Array(44 + samples.length * 2);
  const view = new DataView(bytes.buffer);
  const put = (at: number, s: string) => { for (let i = 0; i < 4; i++) bytes[at + i] = s.charCodeAt(i); };
  put(0, 'RIFF'); view.setUint32(4, 36 + samples.length * 2, true); put(8, 'WAVE');
  put(12, 'fmt '); view.setUint32(16, 16, true); view.setUint16(20, 1, true); view.setUint16(22, 1, true);
  view.setUint32(24, sampleRate, true); view.setUint32(28, sampleRate * 2, true);
  view.setUint16(32, 2, true); view.setUint16(34, 16, true);
  put(36, 'data'); view.setUint32(40, samples.length * 2, true);
  for (let i = 0; i < samples.length; i++) {
    view.setInt16(44 + 2 * i, Math.max(-32768, Math.min(32767, Math.round(samples[i]! * 32768))), true);
  }
  return bytes;
}

/** True when the `festival` program can be run. */
export function festivalAvailable(): boolean {
  const probe = spawnSync('festival', ['--version'], { encoding: 'utf8' });
  return probe.status === 0;
}

function schemeString(text: string): string {
  return '"' + text.replace(/\\/g, '\\\\').replace(/"/g, '\\"') + '"';
}

/**
 * Speaks each sentence with Festival and joins them with `gapSeconds` of silence. Segments are in clip time; the
 * gaps appear as `pau` segments so the timeline has no holes.
 */
export function speakSentences(sentences: string[], gapSeconds = 0.35): Speech {
  if (!festivalAvailable()) throw new Error(`synth: the text-to-speech program \`festival\` is not installed; ${SETUP_HINT}`);
  const dir = mkdtempSync(join(tmpdir(), 'nerfad-tts-'));
  try {
    const chunks: Float32Array[] = [];
    const segments: PhonemeSegment[] = [];
    let sampleRate = 0, clock = 0;
    sentences.forEach((sentence, i) => {
      const script = join(dir, `s${i}.scm`), wav = join(dir, `s${i}.wav`), segs = join(dir, `s${i}.segs`);
      writeFileSync(script, `(set! u (utt.synth (Utterance Text ${schemeString(sentence)})))\n` +
        `(utt.save.wave u ${schemeString(wav)} 'riff)\n(utt.save.segs u ${schemeString(segs)})\n`);
      const run = spawnSync('festival', ['-b', script], { encoding: 'utf8' });
      if (run.status !== 0) throw new Error(`synth: festival failed on sentence ${i + 1}: ${run.stderr}`);
      const audio = readPcm16Wav(readFileSync(wav));
      if (sampleRate === 0) sampleRate = audio.sampleRate;
      if (audio.sampleRate !== sampleRate) throw new Error('synth: festival changed sample rate between sentences');
      const spoken = parseFestivalSegs(readFileSync(segs, 'utf8'), clock);
      // Festival's last segment may end a few samples before or after the waveform; the waveform rules the clock.
      const duration = audio.samples.length / sampleRate;
      const last = spoken[spoken.length - 1];
      if (last) last.end = clock + duration;
      segments.push(...spoken);
      chunks.push(audio.samples);
      clock += duration;
      if (i < sentences.length - 1) {
        const gap = Math.round(gapSeconds * sampleRate);
        chunks.push(new Float32Array(gap));
        segments.push({ phoneme: 'pau', start: clock, end: clock + gap / sampleRate });
        clock += gap / sampleRate;
      }
    });
    const total = chunks.reduce((n, c) => n + c.length, 0);
    const samples = new Float32Array(total);
    let at = 0;
    for (const c of chunks) { samples.set(c, at); at += c.length; }
    return { samples, sampleRate, segments };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
