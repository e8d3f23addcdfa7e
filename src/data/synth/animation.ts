/**
 * Phonemes → visemes → action-unit trajectories, blinks and head motion, all sampled at the video frame rate.
 *
 * Coarticulation follows Cohen & Massaro (1993): each phoneme segment s has, per AU, a target T_s and a dominance
 * D_s(t) = α_s · exp(−θ_s · |t − c_s|), c_s the segment centre; the AU track is the dominance-weighted mean
 * Σ_s D_s(t) T_s / Σ_s D_s(t). Bilabials (p b m) dominate AU25 strongly so the lips close even between open vowels.
 * AU intensities are on OpenFace's 0–5 scale: AU10 upper-lip raiser, AU14 dimpler, AU20 lip stretcher, AU25 lips
 * part, AU26 jaw drop, AU45 blink.
 */
import { Rng } from '../../tensor/random.ts';
import type { PhonemeSegment } from './tts.ts';

export const SPEECH_AUS = ['AU10', 'AU14', 'AU20', 'AU25', 'AU26'] as const;
export type SpeechAu = (typeof SPEECH_AUS)[number];
export type AuFrame = Record<SpeechAu | 'AU45', number>;

export interface Viseme {
  name: string;
  /** Targets for AU10, AU14, AU20, AU25, AU26. */
  target: [number, number, number, number, number];
  /** Dominance magnitude α and rate θ (1/s). */
  alpha: number;
  theta: number;
  /** Extra dominance on AU25 (lip closure/opening must win). */
  alphaLips?: number;
}

const V = (name: string, target: Viseme['target'], alpha: number, theta: number, alphaLips?: number): Viseme =>
  alphaLips === undefined ? { name, target, alpha, theta } : { name, target, alpha, theta, alphaLips };

export const VISEMES: Record<string, Viseme> = {
  rest: V('rest', [0, 0, 0, 0, 0], 1.5, 12),
  bilabial: V('bilabial', [0, 0.5, 0.5, 0, 0.6], 1.2, 40, 8),
  labiodental: V('labiodental', [1.8, 0, 0.8, 1.2, 0.5], 1.0, 24, 3),
  dental: V('dental', [0.5, 0, 0.8, 2.2, 1.0], 0.8, 20),
  alveolar: V('alveolar', [0.4, 0.3, 1.2, 2.0, 0.9], 0.6, 18),
  sibilant: V('sibilant', [0.8, 0.5, 2.2, 1.8, 0.4], 0.9, 22),
  postalveolar: V('postalveolar', [1.2, 0, 0.2, 2.0, 0.9], 0.9, 20),
  velar: V('velar', [0.2, 0, 0.6, 2.2, 1.5], 0.5, 16),
  liquid: V('liquid', [0.4, 0, 0.5, 1.8, 1.1], 0.5, 16),
  glide: V('glide', [0.3, 0, 0.1, 1.2, 0.6], 0.8, 18),
  palatal: V('palatal', [0.6, 0.8, 2.4, 2.2, 0.9], 0.7, 18),
  open: V('open', [0.6, 0, 1.0, 4.2, 3.8], 1.0, 12),
  mid: V('mid', [0.5, 0, 1.4, 3.2, 2.5], 0.9, 12),
  front: V('front', [0.6, 1.0, 3.0, 2.6, 1.2], 0.9, 12),
  rounded: V('rounded', [0.3, 0, 0, 2.0, 1.6], 1.0, 12),
};

/** Festival/CMU phone → viseme. Unknown phones fall back to `mid` (vowel-like) and are reported by `visemeOf`. */
const PHONE_TO_VISEME: Record<string, string> = {
  pau: 'rest', 'h#': 'rest', brth: 'rest', sil: 'rest',
  p: 'bilabial', b: 'bilabial', m: 'bilabial', em: 'bilabial',
  f: 'labiodental', v: 'labiodental',
  th: 'dental', dh: 'dental',
  t: 'alveolar', d: 'alveolar', n: 'alveolar', en: 'alveolar', dx: 'alveolar', nx: 'alveolar',
  s: 'sibilant', z: 'sibilant',
  sh: 'postalveolar', zh: 'postalveolar', ch: 'postalveolar', jh: 'postalveolar',
  k: 'velar', g: 'velar', ng: 'velar', hh: 'velar',
  l: 'liquid', el: 'liquid', r: 'liquid',
  w: 'glide', y: 'palatal',
  aa: 'open', ao: 'open', aw: 'open', ay: 'open', ae: 'open',
  ah: 'mid', ax: 'mid', eh: 'mid', er: 'mid', axr: 'mid', ey: 'mid',
  ih: 'front', iy: 'front',
  uw: 'rounded', uh: 'rounded', ow: 'rounded', oy: 'rounded',
};

export function visemeOf(phoneme: string): Viseme {
  return VISEMES[PHONE_TO_VISEME[phoneme.toLowerCase()] ?? 'mid']!;
}

/** Frame i covers [i/fps, (i+1)/fps); its AUs are sampled at the frame's centre time (i + 0.5)/fps. */
export function frameTime(index: number, fps: number): number {
  return (index + 0.5) / fps;
}

/** Cohen–Massaro blend of the speech AUs at time t (seconds). */
export function speechAusAt(segments: readonly PhonemeSegment[], t: number): Record<SpeechAu, number> {
  const weighted = [0, 0, 0, 0, 0], total = [0, 0, 0, 0, 0];
  for (const seg of segments) {
    const v = visemeOf(seg.phoneme);
    const centre = 0.5 * (seg.start + seg.end);
    // Outside its own segment a phoneme's dominance decays; inside it stays at full strength.
    const distance = Math.max(0, Math.abs(t - centre) - 0.5 * (seg.end - seg.start));
    const shape = Math.exp(-v.theta * distance);
    if (shape < 1e-6) continue;
    for (let k = 0; k < 5; k++) {
      const alpha = k === 3 && v.alphaLips !== undefined ? v.alphaLips : v.alpha;
      weighted[k]! += alpha * shape * v.target[k]!;
      total[k]! += alpha * shape;
    }
  }
  const out = {} as Record<SpeechAu, number>;
  SPEECH_AUS.forEach((name, k) => { out[name] = total[k]! > 0 ? weighted[k]! / total[k]! : 0; });
  return out;
}

/**
 * Blink onsets: first after 0.5–3 s, then gaps of 2 s + exponential(mean 2.5 s) — about 13 blinks a minute, the
 * usual rate while talking.
 */
export function blinkOnsets(duration: number, rng: Rng): number[] {
  const onsets: number[] = [];
  for (let t = rng.range(0.5, 3); t < duration - 0.4; t += 2 + -2.5 * Math.log(1 - rng.uniform())) onsets.push(t);
  return onsets;
}

/** AU45 of one blink at time `since` after its onset: close in 0.1 s, hold 0.05 s, open in 0.2 s, peak 5. */
export function blinkShape(since: number): number {
  if (since < 0 || since > 0.35) return 0;
  const smooth = (x: number) => x * x * (3 - 2 * x);
  if (since < 0.1) return 5 * smooth(since / 0.1);
  if (since < 0.15) return 5;
  return 5 * smooth(1 - (since - 0.15) / 0.2);
}

export interface HeadMotion {
  /** Rotation angles in degrees (yaw about +y, pitch about +x, roll about +z of the head frame). */
  yaw: number;
  pitch: number;
  roll: number;
  /** Translation in the head frame's units (metres). */
  tx: number;
  ty: number;
  tz: number;
}

/** Smooth head motion: each channel a seeded sum of four sinusoids at 0.05–0.6 Hz, scaled to small amplitudes. */
export function headMotionGenerator(rng: Rng): (t: number) => HeadMotion {
  const channel = (amplitude: number) => {
    const parts = Array.from({ length: 4 }, (_, k) => ({
      freq: rng.range(0.05, 0.15) * (k + 1), phase: rng.range(0, 2 * Math.PI), weight: 1 / (k + 1),
    }));
    const norm = parts.reduce((s, p) => s + p.weight, 0);
    return (t: number) => amplitude * parts.reduce((s, p) => s + p.weight * Math.sin(2 * Math.PI * p.freq * t + p.phase), 0) / norm;
  };
  const yaw = channel(4), pitch = channel(2.5), roll = channel(1.5);
  const tx = channel(0.004), ty = channel(0.003), tz = channel(0.004);
  return (t) => ({ yaw: yaw(t), pitch: pitch(t), roll: roll(t), tx: tx(t), ty: ty(t), tz: tz(t) });
}

export interface Animation {
  fps: number;
  frameCount: number;
  aus: AuFrame[];
  head: HeadMotion[];
  blinks: number[];
}

/** Per-frame AUs (speech, blinks) and head motion for `duration` seconds of speech; deterministic for `seed`. */
export function animate(segments: readonly PhonemeSegment[], duration: number, fps: number, seed: number): Animation {
  const rng = new Rng(seed);
  const blinks = blinkOnsets(duration, rng);
  const motion = headMotionGenerator(rng);
  const frameCount = Math.floor(duration * fps + 1e-6);
  const aus: AuFrame[] = [], head: HeadMotion[] = [];
  for (let i = 0; i < frameCount; i++) {
    const t = frameTime(i, fps);
    const speech = speechAusAt(segments, t);
    const blink = blinks.reduce((m, onset) => Math.max(m, blinkShape(t - onset)), 0);
    aus.push({ ...speech, AU45: blink });
    head.push(motion(t));
  }
  return { fps, frameCount, aus, head, blinks };
}
