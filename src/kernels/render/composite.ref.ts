/**
 * float64 reference of volume rendering (emission–absorption quadrature, as in NeRF / AD-NeRF's raw2outputs):
 *
 *   σ_i = act(σ_raw_i)          c_i = sigmoid(c_raw_i)  (the last sample's colour is the background pixel when given)
 *   δ_i = (z_{i+1} − z_i)·|d|   δ_last = 1e10·|d|  (AD-NeRF: leftover transmittance lands on the background)
 *   α_i = 1 − exp(−σ_i δ_i)     T_i = Π_{j<i} (1 − α_j)     w_i = T_i α_i
 *   C = Σ w_i c_i,   depth = Σ w_i z_i,   acc = Σ w_i
 *
 * Written as plain loops over one ray at a time; the gradient is by the same formulas differentiated by hand:
 *   ∂C/∂c_i = w_i,   ∂C/∂σ_i = δ_i (T_{i+1} c_i − (C − C_{≤i})),   likewise for depth (c → z) and acc (c → 1).
 */
export type DensityActivation = 'relu' | 'softplus' | 'exp';

export interface CompositeInputs {
  rays: number;
  samples: number;
  /** [R, S] raw density. */
  sigmaRaw: Float64Array;
  /** [R, S, 3] raw colour (before sigmoid). */
  rgbRaw: Float64Array;
  /** [R, S] sample depths along the ray, increasing. */
  z: Float64Array;
  /** [R] |ray direction| (δ is z-distance times this). */
  dirNorm: Float64Array;
  /** [R, 3] background/torso pixel for the last sample, or null (then the last sample uses its own colour). */
  background: Float64Array | null;
  activation: DensityActivation;
}

export const LAST_INTERVAL = 1e10;
/** AD-NeRF adds 1e-6 to relu(σ) so that empty space still has a tiny density (the last α is then 1). */
export const DENSITY_EPSILON = 1e-6;

export function densityRef(raw: number, activation: DensityActivation): number {
  if (activation === 'relu') return Math.max(raw, 0) + DENSITY_EPSILON;
  if (activation === 'softplus') return raw > 20 ? raw : Math.log1p(Math.exp(raw));
  return Math.exp(raw);
}

function densityDerivative(raw: number, activation: DensityActivation): number {
  if (activation === 'relu') return raw > 0 ? 1 : 0;
  if (activation === 'softplus') return 1 / (1 + Math.exp(-raw));
  return Math.exp(raw);
}

const sigmoid = (x: number): number => 1 / (1 + Math.exp(-x));

function sampleColour(inp: CompositeInputs, r: number, i: number, ch: number): number {
  if (inp.background && i === inp.samples - 1) return inp.background[r * 3 + ch];
  return sigmoid(inp.rgbRaw[(r * inp.samples + i) * 3 + ch]);
}

function interval(inp: CompositeInputs, r: number, i: number): number {
  const S = inp.samples;
  const dz = i === S - 1 ? LAST_INTERVAL : inp.z[r * S + i + 1] - inp.z[r * S + i];
  return dz * inp.dirNorm[r];
}

/** Returns [R, 5]: r, g, b, depth, acc per ray. */
export function compositeReference(inp: CompositeInputs): Float64Array {
  const { rays, samples } = inp;
  const out = new Float64Array(rays * 5);
  for (let r = 0; r < rays; r++) {
    let transmittance = 1;
    for (let i = 0; i < samples; i++) {
      const alpha = 1 - Math.exp(-densityRef(inp.sigmaRaw[r * samples + i], inp.activation) * interval(inp, r, i));
      const weight = transmittance * alpha;
      for (let ch = 0; ch < 3; ch++) out[r * 5 + ch] += weight * sampleColour(inp, r, i, ch);
      out[r * 5 + 3] += weight * inp.z[r * samples + i];
      out[r * 5 + 4] += weight;
      transmittance *= 1 - alpha;
    }
  }
  return out;
}

/**
 * Gradients of L with respect to sigmaRaw [R,S] and rgbRaw [R,S,3], given dL/d(out) [R,5].
 * The "later" sums Σ_{k>i} w_k v_k are written out explicitly (O(S²) per ray: a reference, not a kernel).
 */
export function compositeBackwardReference(inp: CompositeInputs, dL_dout: Float64Array): { dL_dsigmaRaw: Float64Array; dL_drgbRaw: Float64Array } {
  const { rays, samples } = inp;
  const dL_dsigmaRaw = new Float64Array(rays * samples);
  const dL_drgbRaw = new Float64Array(rays * samples * 3);
  for (let r = 0; r < rays; r++) {
    const g = dL_dout.slice(r * 5, r * 5 + 5);
    // Per-sample quantities of this ray.
    const alpha: number[] = [];
    const weight: number[] = [];
    const transmittanceAfter: number[] = [];
    const value: number[][] = [];
    let transmittance = 1;
    for (let i = 0; i < samples; i++) {
      const a = 1 - Math.exp(-densityRef(inp.sigmaRaw[r * samples + i], inp.activation) * interval(inp, r, i));
      alpha.push(a);
      weight.push(transmittance * a);
      transmittance *= 1 - a;
      transmittanceAfter.push(transmittance);
      value.push([sampleColour(inp, r, i, 0), sampleColour(inp, r, i, 1), sampleColour(inp, r, i, 2), inp.z[r * samples + i], 1]);
    }
    for (let i = 0; i < samples; i++) {
      // ∂Q/∂σ_i = δ_i (T_{i+1} v_i − Σ_{k>i} w_k v_k) for each rendered quantity Q = Σ w v.
      let dL_dsigma = 0;
      for (let q = 0; q < 5; q++) {
        let later = 0;
        for (let k = i + 1; k < samples; k++) later += weight[k] * value[k][q];
        dL_dsigma += g[q] * interval(inp, r, i) * (transmittanceAfter[i] * value[i][q] - later);
      }
      const raw = inp.sigmaRaw[r * samples + i];
      dL_dsigmaRaw[r * samples + i] = dL_dsigma * densityDerivative(raw, inp.activation);
      const ownColour = !(inp.background && i === samples - 1);
      for (let ch = 0; ch < 3; ch++) {
        const c = value[i][ch];
        dL_drgbRaw[(r * samples + i) * 3 + ch] = ownColour ? g[ch] * weight[i] * c * (1 - c) : 0;
      }
    }
  }
  return { dL_dsigmaRaw, dL_drgbRaw };
}
