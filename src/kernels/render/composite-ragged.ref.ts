/**
 * float64 reference of volume rendering over packed (ragged) samples — see composite-ragged.ts:
 *
 *   ray r owns samples offset_r … offset_r + count_r − 1 (count 0: an empty ray)
 *   σ_i = act(σ_raw_i)   c_i = sigmoid(c_raw_i)   α_i = 1 − exp(−σ_i δ_i)   T_i = Π_{j<i} (1 − α_j)   w_i = T_i α_i
 *   C = Σ w_i c_i + T_end · bg    depth = Σ w_i z_i    acc = Σ w_i
 *
 * T_end is the transmittance left after the last sample walked: with early termination (T < threshold) the walk
 * stops and the remainder goes to the background too, in forward and backward alike.
 * Gradients, by hand: ∂Q/∂σ_i = δ_i (T_{i+1} v_i − Σ_{k>i} w_k v_k − [Q = C] T_end bg) · act'(σ_raw_i), for Q = Σ w v;
 * the background term is the one torch-ngp's first ragged compositor missed (its issue #77).
 */
import { densityRef, type DensityActivation } from './composite.ref.ts';

export interface RaggedInputs {
  rays: number;
  /** [R, 2] (offset, count) runs. */
  runs: ArrayLike<number>;
  /** [N] raw density, [N, 3] raw colour, [N] depth (z units), [N] interval (world units). */
  sigmaRaw: Float64Array;
  rgbRaw: Float64Array;
  z: ArrayLike<number>;
  delta: ArrayLike<number>;
  /** [R, 3] */
  background: ArrayLike<number>;
  activation: DensityActivation;
  /** Stop once T < threshold (0: never). */
  threshold: number;
}

const sigmoid = (x: number): number => 1 / (1 + Math.exp(-x));

function densityDerivative(raw: number, activation: DensityActivation): number {
  if (activation === 'relu') return raw > 0 ? 1 : 0;
  if (activation === 'softplus') return 1 / (1 + Math.exp(-raw));
  return Math.exp(raw);
}

interface Walk {
  samples: number[];
  weight: number[];
  transmittanceAfter: number[];
  end: number;
}

function walkRay(inp: RaggedInputs, r: number): Walk {
  const offset = inp.runs[r * 2];
  const count = inp.runs[r * 2 + 1];
  const w: Walk = { samples: [], weight: [], transmittanceAfter: [], end: 1 };
  let transmittance = 1;
  for (let i = 0; i < count; i++) {
    if (transmittance < inp.threshold) break;
    const s = offset + i;
    const alpha = 1 - Math.exp(-densityRef(inp.sigmaRaw[s], inp.activation) * inp.delta[s]);
    w.samples.push(s);
    w.weight.push(transmittance * alpha);
    transmittance *= 1 - alpha;
    w.transmittanceAfter.push(transmittance);
  }
  w.end = transmittance;
  return w;
}

/** [R, 5]: r, g, b, depth, acc. */
export function compositeRaggedReference(inp: RaggedInputs): Float64Array {
  const out = new Float64Array(inp.rays * 5);
  for (let r = 0; r < inp.rays; r++) {
    const w = walkRay(inp, r);
    w.samples.forEach((s, j) => {
      for (let ch = 0; ch < 3; ch++) out[r * 5 + ch] += w.weight[j] * sigmoid(inp.rgbRaw[s * 3 + ch]);
      out[r * 5 + 3] += w.weight[j] * inp.z[s];
      out[r * 5 + 4] += w.weight[j];
    });
    for (let ch = 0; ch < 3; ch++) out[r * 5 + ch] += w.end * inp.background[r * 3 + ch];
  }
  return out;
}

/** Per-ray loss |C − target|² [R]. */
export function compositeRaggedLossReference(inp: RaggedInputs, target: ArrayLike<number>): Float64Array {
  const out = compositeRaggedReference(inp);
  const loss = new Float64Array(inp.rays);
  for (let r = 0; r < inp.rays; r++) for (let ch = 0; ch < 3; ch++) loss[r] += (out[r * 5 + ch] - target[r * 3 + ch]) ** 2;
  return loss;
}

/** Gradients w.r.t. sigmaRaw [N] and rgbRaw [N, 3] given dL/d(out) [R, 5]; samples not walked get zero. */
export function compositeRaggedBackwardReference(inp: RaggedInputs, dL_dout: ArrayLike<number>): { dL_dsigmaRaw: Float64Array; dL_drgbRaw: Float64Array } {
  const dL_dsigmaRaw = new Float64Array(inp.sigmaRaw.length);
  const dL_drgbRaw = new Float64Array(inp.rgbRaw.length);
  for (let r = 0; r < inp.rays; r++) {
    const w = walkRay(inp, r);
    const g = Array.from({ length: 5 }, (_, q) => dL_dout[r * 5 + q]);
    const value = w.samples.map((s) => [sigmoid(inp.rgbRaw[s * 3]), sigmoid(inp.rgbRaw[s * 3 + 1]), sigmoid(inp.rgbRaw[s * 3 + 2]), inp.z[s], 1]);
    w.samples.forEach((s, i) => {
      let dL_dsigma = 0;
      for (let q = 0; q < 5; q++) {
        let later = 0;
        for (let k = i + 1; k < w.samples.length; k++) later += w.weight[k] * value[k][q];
        // The background's share T_end·bg also shrinks when σ_i grows (colour channels only).
        if (q < 3) later += w.end * inp.background[r * 3 + q];
        dL_dsigma += g[q] * inp.delta[s] * (w.transmittanceAfter[i] * value[i][q] - later);
      }
      dL_dsigmaRaw[s] = dL_dsigma * densityDerivative(inp.sigmaRaw[s], inp.activation);
      for (let ch = 0; ch < 3; ch++) {
        const c = value[i][ch];
        dL_drgbRaw[s * 3 + ch] = g[ch] * w.weight[i] * c * (1 - c);
      }
    });
  }
  return { dL_dsigmaRaw, dL_drgbRaw };
}

/** Loss-mode gradient: dL/dout from dL/dloss [R] via dL/dC = 2 (C − target) dL/dloss. */
export function raggedLossCotangent(inp: RaggedInputs, target: ArrayLike<number>, dL_dloss: ArrayLike<number>): Float64Array {
  const out = compositeRaggedReference(inp);
  const g = new Float64Array(inp.rays * 5);
  for (let r = 0; r < inp.rays; r++) for (let ch = 0; ch < 3; ch++) g[r * 5 + ch] = 2 * (out[r * 5 + ch] - target[r * 3 + ch]) * dL_dloss[r];
  return g;
}
