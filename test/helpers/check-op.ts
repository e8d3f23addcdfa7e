/**
 * One helper drives the three correctness checks every op gets:
 *   1. GPU forward vs the float64 reference, on seeded random inputs;
 *   2. the reference backward vs central finite differences of the reference forward, in float64;
 *   3. the GPU backward vs the reference backward.
 * A new op gets all three by one `checkOp({...})` call.
 *
 * The loss used for gradients is L = Σ w ⊙ y with a seeded random w (a random-direction cotangent), so every
 * output element contributes with its own weight.
 */
import { expect } from 'vitest';
import { Rng, Tensor, backward, scope, tensor } from '../../src/index.ts';

export type InputDomain = 'normal' | 'positive' | 'unit' | 'awayFromZero' | 'int' | ((rng: Rng) => number);

export interface InputSpec {
  shape: number[];
  domain?: InputDomain;
  /** Inputs that are not differentiated (indices, masks). */
  noGrad?: boolean;
  dtype?: 'f32' | 'i32' | 'u32';
}

export interface CheckOpOptions {
  name: string;
  inputs: InputSpec[];
  /** The GPU computation under test. */
  gpu: (...inputs: Tensor[]) => Tensor;
  /** The float64 reference forward. Returns the output values (row-major). */
  ref: (...inputs: Float64Array[]) => Float64Array;
  /**
   * The float64 reference backward: given inputs and dL/dy, the gradient of each input (null for noGrad ones).
   * Omitted for ops composed of already-checked ops: then finite differences of `ref` serve as the reference.
   */
  refBackward?: (inputs: Float64Array[], dL_dy: Float64Array) => (Float64Array | null)[];
  grad?: boolean;
  seed?: number;
  rtol?: number;
  atol?: number;
  gradRtol?: number;
  gradAtol?: number;
  /** Finite-difference step (float64). */
  fdStep?: number;
  /** At most this many coordinates per input are finite-differenced (chosen at random). */
  fdSamples?: number;
}

function sample(rng: Rng, domain: InputDomain): number {
  if (typeof domain === 'function') return domain(rng);
  switch (domain) {
    case 'normal':
      return rng.normal();
    case 'positive':
      return 0.2 + 2 * rng.uniform();
    case 'unit':
      return rng.uniform();
    case 'awayFromZero': {
      const v = 0.1 + 1.5 * rng.uniform();
      return rng.uniform() < 0.5 ? -v : v;
    }
    case 'int':
      return rng.int(7) - 3;
  }
}

export function makeInputs(specs: InputSpec[], rng: Rng): Float64Array[] {
  return specs.map((spec) => {
    const n = spec.shape.reduce((a, b) => a * b, 1);
    const data = new Float64Array(n);
    // Rounded to f32 so the GPU and the reference see identical inputs.
    for (let i = 0; i < n; i++) data[i] = Math.fround(sample(rng, spec.domain ?? 'normal'));
    return data;
  });
}

export function expectClose(actual: ArrayLike<number>, expected: ArrayLike<number>, rtol: number, atol: number, what: string): void {
  expect(actual.length, `${what}: length`).toBe(expected.length);
  let worst = -1;
  let worstExcess = 0;
  for (let i = 0; i < expected.length; i++) {
    const a = actual[i];
    const e = expected[i];
    if (Number.isNaN(e) && Number.isNaN(a)) continue;
    const excess = Math.abs(a - e) - (atol + rtol * Math.abs(e));
    if (!(excess <= 0) && (worst < 0 || excess > worstExcess || Number.isNaN(excess))) {
      worst = i;
      worstExcess = Number.isNaN(excess) ? Infinity : excess;
    }
  }
  if (worst >= 0) {
    expect.fail(`${what}: element ${worst} is ${actual[worst]}, expected ${expected[worst]} (rtol ${rtol}, atol ${atol})`);
  }
}

/** Central finite differences of L(x) = Σ w ⊙ ref(x) with respect to chosen coordinates of input k. */
function finiteDifferences(
  ref: CheckOpOptions['ref'],
  inputs: Float64Array[],
  w: Float64Array,
  k: number,
  coords: number[],
  h: number,
): Float64Array {
  const loss = (xs: Float64Array[]): number => {
    const y = ref(...xs);
    let s = 0;
    for (let i = 0; i < y.length; i++) s += w[i] * y[i];
    return s;
  };
  const out = new Float64Array(coords.length);
  coords.forEach((j, idx) => {
    const plus = inputs.map((x) => x.slice());
    const minus = inputs.map((x) => x.slice());
    plus[k][j] += h;
    minus[k][j] -= h;
    out[idx] = (loss(plus) - loss(minus)) / (2 * h);
  });
  return out;
}

export async function checkOp(opts: CheckOpOptions): Promise<void> {
  const rng = new Rng(opts.seed ?? 1234);
  const rtol = opts.rtol ?? 1e-5;
  const atol = opts.atol ?? 1e-6;
  const inputs = makeInputs(opts.inputs, rng);
  const expected = opts.ref(...inputs);

  // 1. Forward.
  const gradWanted = opts.grad ?? true;
  const tensors = opts.inputs.map((spec, k) => {
    const t = tensor(inputs[k], spec.shape, spec.dtype ?? 'f32');
    t.requiresGrad = gradWanted && !spec.noGrad && (spec.dtype ?? 'f32') === 'f32';
    return t;
  });
  const w = new Float64Array(expected.length);
  for (let i = 0; i < w.length; i++) w[i] = Math.fround(rng.normal());

  try {
    const output = scope(() => {
      const y = opts.gpu(...tensors);
      if (gradWanted) backward(y, tensor(w, y.shape));
      return y;
    });
    expectClose(await output.data(), expected, rtol, atol, `${opts.name} forward`);
    output.dispose();
    if (!gradWanted) return;

    // 2. Reference backward vs finite differences; 3. GPU backward vs reference backward.
    const h = opts.fdStep ?? 1e-6;
    const refGrads = opts.refBackward?.(inputs, w);
    for (let k = 0; k < inputs.length; k++) {
      if (opts.inputs[k].noGrad || (opts.inputs[k].dtype ?? 'f32') !== 'f32') continue;
      const n = inputs[k].length;
      const samples = opts.fdSamples ?? 48;
      const coords = n <= samples ? Array.from({ length: n }, (_, j) => j) : Array.from({ length: samples }, () => rng.int(n));
      const fd = finiteDifferences(opts.ref, inputs, w, k, coords, h);
      let reference: Float64Array;
      if (refGrads) {
        const rg = refGrads[k];
        if (!rg) throw new Error(`${opts.name}: refBackward gave no gradient for input ${k}`);
        expectClose(coords.map((j) => rg[j]), fd, 1e-5, 1e-6, `${opts.name} reference backward (input ${k}) vs finite differences`);
        reference = rg;
      } else {
        reference = fd;
      }
      const grad = tensors[k].grad;
      expect(grad, `${opts.name}: input ${k} received no gradient`).not.toBeNull();
      const gpuGrad = await grad!.data();
      const gRtol = opts.gradRtol ?? Math.max(rtol, 1e-4);
      const gAtol = opts.gradAtol ?? Math.max(atol, 1e-5);
      if (refGrads) expectClose(gpuGrad, reference, gRtol, gAtol, `${opts.name} GPU backward (input ${k})`);
      else expectClose(coords.map((j) => gpuGrad[j]), reference, gRtol, gAtol, `${opts.name} GPU backward (input ${k}) vs finite differences`);
    }
  } finally {
    for (const t of tensors) t.dispose();
  }
}
