/**
 * Audio features for the audio branch (AudioNet): log-mel spectrogram at 50 Hz, windowed to [frames, 16, C].
 *
 * Why log-mel: NeRF-AD and its anchors (AD-NeRF, DFRF, RAD-NeRF, ER-NeRF) feed AudioNet with the character logits
 * of DeepSpeech v0.1 (29-d at 50 Hz), or with wav2vec (44-d) / HuBERT (1024-d) features. None of those model
 * weights is available offline to this project (no model hub can be reached, and no package ships them), so we
 * compute a log-mel spectrogram instead: deterministic, weight-free, and carrying the same phonetic information
 * that a learned AudioNet can map from. This is a deliberate deviation from the paper (spec g.1).
 *
 * Front end (at 16 kHz):
 *   - step 320 samples (20 ms → 50 Hz, DeepSpeech's logit rate); step i is centred on sample i·320, the signal is
 *     zero-padded by 200 samples at both ends, so a clip of n samples gives T = floor(n / 320) + 1 steps;
 *   - periodic Hann window of 400 samples (25 ms), zero-padded to a 512-point FFT (radix-2, below);
 *   - power spectrum |X_k|², k = 0..256, summed by C triangular mel filters (HTK mel scale
 *     mel(f) = 2595·log10(1 + f/700), C + 2 equally spaced mel points from 0 Hz to 8 kHz, peak weight 1);
 *   - natural log of (energy + 1e-6); the floor keeps digital silence finite (ln 1e-6 ≈ −13.8).
 * C = 29 by default (`MEL_BANDS`): the count of DeepSpeech's logits, so AudioNet's input is [16, 29] exactly as in
 * the anchors and its first Conv1d (29→32) keeps the anchors' shape. 29 bands over 0–8 kHz are ≈ 100 mel apart —
 * comparable to the 26–40 band filterbanks of classic speech front ends. Pass another `bands` for wider models.
 *
 * Windowing (the anchors' `fea_win` layout): video frame k at `fps` sits at audio step c = round(k · 50 / fps)
 * (c = 2k at 25 fps); its window is steps c−8 … c+7 (16 steps, the frame time at index 8). Steps outside the clip
 * are filled with the silence value ln(1e-6), not with 0, because 0 in the log domain would mean energy 1.
 */

export const AUDIO_RATE = 16000;
export const HOP = 320;
export const WINDOW = 400;
export const FFT_SIZE = 512;
export const STEP_RATE = AUDIO_RATE / HOP;   // 50 Hz
export const MEL_BANDS = 29;
export const STEPS_PER_FRAME = 16;
export const LOG_FLOOR = 1e-6;
export const SILENCE = Math.log(LOG_FLOOR);

/**
 * In-place iterative radix-2 complex FFT (decimation in time), X_k = Σ_n x_n e^{−2πi kn/N}. N must be a power
 * of two. Float64 throughout.
 */
export function fft(re: Float64Array, im: Float64Array): void {
  const n = re.length;
  if (im.length !== n) throw new Error(`fft: real part has ${n} values, imaginary part ${im.length}`);
  if (n === 0 || (n & (n - 1)) !== 0) throw new Error(`fft: length must be a power of two, got ${n}`);
  // Bit-reversal permutation.
  for (let i = 1, j = 0; i < n; i++) {
    let bit = n >> 1;
    for (; j & bit; bit >>= 1) j ^= bit;
    j ^= bit;
    if (i < j) {
      let t = re[i]!; re[i] = re[j]!; re[j] = t;
      t = im[i]!; im[i] = im[j]!; im[j] = t;
    }
  }
  // Butterflies; twiddles from a direct cos/sin per k (not a recurrence) so rounding does not accumulate.
  for (let size = 2; size <= n; size <<= 1) {
    const half = size >> 1;
    const step = (-2 * Math.PI) / size;
    for (let k = 0; k < half; k++) {
      const wr = Math.cos(step * k), wi = Math.sin(step * k);
      for (let start = 0; start < n; start += size) {
        const a = start + k, b = a + half;
        const xr = re[b]! * wr - im[b]! * wi;
        const xi = re[b]! * wi + im[b]! * wr;
        re[b] = re[a]! - xr; im[b] = im[a]! - xi;
        re[a] = re[a]! + xr; im[a] = im[a]! + xi;
      }
    }
  }
}

/** Naive O(N²) DFT in float64, the reference for `fft`. */
export function dftReference(re: ArrayLike<number>, im: ArrayLike<number>): { re: Float64Array; im: Float64Array } {
  const n = re.length;
  const outRe = new Float64Array(n), outIm = new Float64Array(n);
  for (let k = 0; k < n; k++) {
    let sr = 0, si = 0;
    for (let t = 0; t < n; t++) {
      const angle = (-2 * Math.PI * ((k * t) % n)) / n;
      const c = Math.cos(angle), s = Math.sin(angle);
      sr += re[t]! * c - im[t]! * s;
      si += re[t]! * s + im[t]! * c;
    }
    outRe[k] = sr; outIm[k] = si;
  }
  return { re: outRe, im: outIm };
}

export const hzToMel = (hz: number): number => 2595 * Math.log10(1 + hz / 700);
export const melToHz = (mel: number): number => 700 * (10 ** (mel / 2595) - 1);

/**
 * Triangular mel filterbank: `bands` rows of `fftSize/2 + 1` weights. Band b rises linearly from edge b to its
 * peak (weight 1) at edge b+1 and falls to edge b+2, edges equally spaced in mel from fMin to fMax.
 */
export function melFilterbank(bands = MEL_BANDS, fftSize = FFT_SIZE, sampleRate = AUDIO_RATE, fMin = 0, fMax = sampleRate / 2): Float64Array[] {
  const bins = fftSize / 2 + 1;
  const melLo = hzToMel(fMin), melHi = hzToMel(fMax);
  const edges = Array.from({ length: bands + 2 }, (_, i) => melToHz(melLo + ((melHi - melLo) * i) / (bands + 1)));
  const filters: Float64Array[] = [];
  for (let b = 0; b < bands; b++) {
    const lo = edges[b]!, mid = edges[b + 1]!, hi = edges[b + 2]!;
    const row = new Float64Array(bins);
    for (let k = 0; k < bins; k++) {
      const f = (k * sampleRate) / fftSize;
      if (f > lo && f < hi) row[k] = f <= mid ? (f - lo) / (mid - lo) : (hi - f) / (hi - mid);
    }
    filters.push(row);
  }
  return filters;
}

/** The frequency range [lo, hi] (Hz) of each band's triangle and its peak, for documentation and tests. */
export function melBandEdges(bands = MEL_BANDS, sampleRate = AUDIO_RATE): { lo: number; peak: number; hi: number }[] {
  const melHi = hzToMel(sampleRate / 2);
  const edge = (i: number) => melToHz((melHi * i) / (bands + 1));
  return Array.from({ length: bands }, (_, b) => ({ lo: edge(b), peak: edge(b + 1), hi: edge(b + 2) }));
}

export interface LogMel {
  /** Row-major [steps, bands]. */
  data: Float32Array;
  steps: number;
  bands: number;
}

/** Periodic Hann window of length n: w[i] = 0.5 − 0.5·cos(2πi/n). */
export function hannWindow(n = WINDOW): Float64Array {
  const w = new Float64Array(n);
  for (let i = 0; i < n; i++) w[i] = 0.5 - 0.5 * Math.cos((2 * Math.PI * i) / n);
  return w;
}

/** Power spectrum |X_k|² (k = 0..FFT_SIZE/2) of the Hann-windowed step centred on sample `centre`. */
export function powerSpectrumAt(samples: Float32Array, centre: number, window = hannWindow()): Float64Array {
  const re = new Float64Array(FFT_SIZE), im = new Float64Array(FFT_SIZE);
  const start = centre - WINDOW / 2;
  for (let i = 0; i < WINDOW; i++) {
    const s = start + i;
    if (s >= 0 && s < samples.length) re[i] = samples[s]! * window[i]!;
  }
  fft(re, im);
  const power = new Float64Array(FFT_SIZE / 2 + 1);
  for (let k = 0; k < power.length; k++) power[k] = re[k]! * re[k]! + im[k]! * im[k]!;
  return power;
}

/** Log-mel spectrogram of 16 kHz mono audio: [floor(n/320) + 1, bands], see the file header. */
export function logMelSpectrogram(samples: Float32Array, bands = MEL_BANDS): LogMel {
  const steps = Math.floor(samples.length / HOP) + 1;
  const filters = melFilterbank(bands);
  // Only the non-zero span of each filter is visited.
  const spans = filters.map((row) => {
    let first = row.findIndex((v) => v > 0);
    let last = row.length - 1;
    while (last >= 0 && !(row[last]! > 0)) last--;
    if (first < 0) { first = 0; last = -1; }
    return [first, last] as const;
  });
  const window = hannWindow();
  const data = new Float32Array(steps * bands);
  for (let t = 0; t < steps; t++) {
    const power = powerSpectrumAt(samples, t * HOP, window);
    for (let b = 0; b < bands; b++) {
      const row = filters[b]!;
      const [first, last] = spans[b]!;
      let e = 0;
      for (let k = first; k <= last; k++) e += row[k]! * power[k]!;
      data[t * bands + b] = Math.log(e + LOG_FLOOR);
    }
  }
  return { data, steps, bands };
}

/** The audio step at the centre of video frame k: round(k · 50 / fps). */
export function centreStep(frame: number, fps: number): number {
  return Math.round((frame * STEP_RATE) / fps);
}

/**
 * Windows a log-mel spectrogram into one [16, C] block per video frame: returns row-major [frames, 16, C] where
 * block k holds steps centreStep(k)−8 … centreStep(k)+7, out-of-range steps set to `SILENCE`.
 */
export function windowFeatures(mel: LogMel, frames: number, fps: number, stepsPerFrame = STEPS_PER_FRAME): Float32Array {
  const { data, steps, bands } = mel;
  const out = new Float32Array(frames * stepsPerFrame * bands).fill(SILENCE);
  const before = stepsPerFrame / 2;
  for (let k = 0; k < frames; k++) {
    const first = centreStep(k, fps) - before;
    for (let w = 0; w < stepsPerFrame; w++) {
      const t = first + w;
      if (t < 0 || t >= steps) continue;
      out.set(data.subarray(t * bands, (t + 1) * bands), (k * stepsPerFrame + w) * bands);
    }
  }
  return out;
}

/** 16 kHz mono audio → AudioNet input [frames, 16, bands] (row-major), the clip's audio features. */
export function audioFeatures(samples: Float32Array, frames: number, fps: number, bands = MEL_BANDS): Float32Array {
  return windowFeatures(logMelSpectrogram(samples, bands), frames, fps);
}
