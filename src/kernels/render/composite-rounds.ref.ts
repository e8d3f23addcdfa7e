/**
 * float64 reference of volume rendering in rounds — see composite-rounds.ts. A ray's running state is
 * (C, depth, acc, T); a round walks the ray's new samples from it, exactly as one compositing walk would continue:
 *
 *   for each new sample i, while T ≥ threshold:   α_i = 1 − exp(−σ_i δ_i)   w_i = T α_i
 *                                                 C += w_i c_i   depth += w_i z_i   acc += w_i   T ← T (1 − α_i)
 *   next start = DONE if T < threshold, else the march's end step (DONE too when the ray left its range)
 *   after the last round: C += T · background
 *
 * Rounds of samples k₀…k₁, k₁…k₂, … therefore composite to the one-walk result over k₀…k_end.
 */
import { densityRef, type DensityActivation } from './composite.ref.ts';
import { DONE } from './march.ref.ts';

export const ROUND_STATE = 6;

/** The state before the first round: [R, 6] of (0, 0, 0, 0, 0, 1). */
export function initialRoundState(rays: number): Float64Array {
  const state = new Float64Array(rays * ROUND_STATE);
  for (let r = 0; r < rays; r++) state[r * ROUND_STATE + 5] = 1;
  return state;
}

export interface RoundInputs {
  rays: number;
  /** [R, 2] (offset, count) into this round's packed samples. */
  runs: ArrayLike<number>;
  sigmaRaw: ArrayLike<number>;
  rgbRaw: ArrayLike<number>;
  z: ArrayLike<number>;
  delta: ArrayLike<number>;
  /** [R] the march's end step per ray. */
  endStep: ArrayLike<number>;
  activation: DensityActivation;
  threshold: number;
}

const sigmoid = (x: number): number => 1 / (1 + Math.exp(-x));

/**
 * One round: updates `state` in place; returns the samples walked (ray by ray, in ray order) and each ray's
 * next start step.
 */
export function compositeRoundReference(inp: RoundInputs, state: Float64Array): { walked: number[]; nextStart: number[] } {
  const walked: number[] = [];
  const nextStart: number[] = [];
  for (let r = 0; r < inp.rays; r++) {
    const b = r * ROUND_STATE;
    const offset = inp.runs[r * 2];
    const count = inp.runs[r * 2 + 1];
    for (let i = 0; i < count && state[b + 5] >= inp.threshold; i++) {
      const s = offset + i;
      const alpha = 1 - Math.exp(-densityRef(inp.sigmaRaw[s], inp.activation) * inp.delta[s]);
      const weight = state[b + 5] * alpha;
      for (let ch = 0; ch < 3; ch++) state[b + ch] += weight * sigmoid(inp.rgbRaw[s * 3 + ch]);
      state[b + 3] += weight * inp.z[s];
      state[b + 4] += weight;
      state[b + 5] *= 1 - alpha;
      walked.push(s);
    }
    nextStart.push(state[b + 5] < inp.threshold ? DONE : inp.endStep[r]);
  }
  return { walked, nextStart };
}

/** After the last round: [R, 5] = (C + T·background, depth, acc). */
export function finishRoundsReference(state: Float64Array, background: ArrayLike<number>): Float64Array {
  const rays = state.length / ROUND_STATE;
  const out = new Float64Array(rays * 5);
  for (let r = 0; r < rays; r++) {
    const b = r * ROUND_STATE;
    for (let ch = 0; ch < 3; ch++) out[r * 5 + ch] = state[b + ch] + state[b + 5] * background[r * 3 + ch];
    out[r * 5 + 3] = state[b + 3];
    out[r * 5 + 4] = state[b + 4];
  }
  return out;
}
