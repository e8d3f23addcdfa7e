/**
 * Forward-only small MLP for CPU adapters (lavapipe), every layer fully unrolled:
 *   y = act_out(W_{L−1} · act(… act(W_0 · x + b_0) …) + b_{L−1})
 * The widths and activations are compile-time constants (one pipeline per MLP shape; the row count travels in
 * Params). Used where no gradient is recorded (rendering, occupancy-grid queries): `mlpInfer` in src/ops/mlp.ts.
 *
 * Why this shape: lavapipe runs 8 invocations as the lanes of one SIMD register and turns every load whose
 * address is not a compile-time constant into 8 bounds-checked scalar loads, even when the address is the same in
 * every lane (measured: 2.3–2.9 G floats/s for the whole 2-core machine, against ~28 G lane-FMAs/s; `npm run bench`
 * prints both). A load from workgroup memory at a constant address, outside any loop, is instead one scalar load
 * broadcast to the lanes. So the workgroup first copies the flat weights into workgroup memory, and after one
 * barrier every weight is read at a constant address; each row's inputs are loaded once, the hidden activations
 * stay in registers (spilling to the stack costs far less than any per-lane load), and only the outputs are
 * stored. There is no loop after the barrier: inside a loop lavapipe loads per lane again.
 * Measured on lavapipe (2-core EPYC, AVX2), 145,760 rows: [32 → 64 → 16] 23–27 ms (33–38 GFLOP/s) against 124 ms
 * for its two matmul dispatches; [31 → 64 → 64 → 3] 52 ms (35 GFLOP/s) against 223 ms.
 * A first fused MLP that unrolled the layers but read the weights from the storage buffer took minutes to compile
 * (a bounds-check branch per load, see fused-mlp.ts); with workgroup memory [31 → 64 → 64 → 3] compiles in ~5 s
 * (once: Mesa keeps compiled shaders in its disk cache). Real GPUs keep the matmul per layer (this form is
 * untimed there).
 *
 * Thread mapping: 1-D, WORKGROUP threads per workgroup (the runtime folds the grid into 2-D for many rows);
 * thread t of workgroup g computes rows g·WORKGROUP·R + q·WORKGROUP + t for q < R (R = rowsPerThread), so the
 * lanes of one SIMD register hold consecutive rows. Rows past the count are clamped for loading, not stored.
 *
 * Layout: the input row is the concatenation of one or two parts, each a column window of a row-major matrix:
 * part j of row r is x_j[r · x_j_stride + x_j_offset + i] for i < parts[j] (so a concat of [a, b[:, 1:]] is read in
 * place, with no copies); weights flat in `mlpLayout` order (fused-mlp.ts): per layer W_l [out_l, in_l] row-major
 * (torch's Linear layout), then b_l [out_l]; y [rows, out] row-major. `indexed`: thread row r stands for row
 * index[r] of the inputs and of y (a gather and a scatter in place: the renderer colours only the samples
 * compositing reads, see fit.ts); the count of index entries is `rows`, and y's other rows are left as they are.
 */
import { defineKernel } from '../runtime/kernel.ts';
import { mlpLayout } from './fused-mlp.ts';

export type InferActivation = 'none' | 'relu' | 'sigmoid' | 'tanh';

export interface MlpInferShape {
  /** [in, hidden…, out]. */
  widths: readonly number[];
  /** Widths of the input's parts (one or two), summing to widths[0]. */
  parts: readonly number[];
  /** After every hidden layer. */
  activation: InferActivation;
  /** After the last layer. */
  outputActivation: InferActivation;
  rowsPerThread: 1 | 2;
  /** Rows are read and written through the `index` list (i32). */
  indexed: boolean;
}

export const WORKGROUP = 256;
/** Weights that fit 32 KiB of workgroup memory (WebGPU's default maxComputeWorkgroupStorageSize). */
export const MAX_INFER_PARAMS = 8192;

const ACTIVATION: Record<InferActivation, (v: string) => string> = {
  none: (v) => v,
  relu: (v) => `max(${v}, 0.0)`,
  sigmoid: (v) => `(1.0 / (1.0 + exp(-${v})))`,
  tanh: (v) => `tanh(${v})`,
};

/** Multiply-adds per row: Σ in_l · out_l. */
export function mlpMacs(widths: readonly number[]): number {
  let macs = 0;
  for (let l = 0; l + 1 < widths.length; l++) macs += widths[l] * widths[l + 1];
  return macs;
}

/**
 * Rows per thread for a shape: two rows share each weight broadcast ([32 → 64 → 16]: 38 against 32 GFLOP/s), but
 * the shader doubles in size, so shapes of more than 4096 multiply-adds per row take one (measured: [31 → 64 → 64 →
 * 3] ran at 35 with one row and 31 with two, and compiled 20% faster).
 */
export function inferRowsPerThread(widths: readonly number[]): 1 | 2 {
  return mlpMacs(widths) <= 4096 ? 2 : 1;
}

export const MAX_INPUT_PARTS = 2;

function wgsl({ widths, parts, activation, outputActivation, rowsPerThread, indexed }: MlpInferShape): string {
  const layout = mlpLayout(widths);
  const L = widths.length - 1;
  const Q = Array.from({ length: rowsPerThread }, (_, q) => q);
  const body: string[] = [];
  // h{l}_{q}_{i}: input i of layer l for the thread's row q (h0 = x).
  for (const q of Q) {
    let i = 0;
    parts.forEach((width, j) => {
      for (let c = 0; c < width; c++, i++) body.push(`let h0_${q}_${i} = x${j}[x${j}_${q} + ${c}u];`);
    });
  }
  for (let l = 0; l < L; l++) {
    const [n_in, n_out] = [widths[l], widths[l + 1]];
    const last = l === L - 1;
    const act = ACTIVATION[last ? outputActivation : activation];
    body.push(`// layer ${l}: ${n_in} → ${n_out}`);
    // The layer's outputs outlive the per-output blocks below (each block reuses the accumulator names z_q).
    if (!last) body.push(Q.flatMap((q) => Array.from({ length: n_out }, (_, o) => `var h${l + 1}_${q}_${o}: f32;`)).join(' '));
    for (let o = 0; o < n_out; o++) {
      const terms = Q.map((q) => `var z_${q} = w[${layout.bias[l] + o}u];`);
      for (let i = 0; i < n_in; i++) {
        const weight = `w[${layout.weight[l] + o * n_in + i}u]`;
        terms.push(
          rowsPerThread === 1
            ? `z_0 = fma(h${l}_0_${i}, ${weight}, z_0);`
            : `{ let wi = ${weight}; ${Q.map((q) => `z_${q} = fma(h${l}_${q}_${i}, wi, z_${q});`).join(' ')} }`,
        );
      }
      for (const q of Q) terms.push(last ? `if (valid_${q}) { y[y_${q} + ${o}u] = ${act(`z_${q}`)}; }` : `h${l + 1}_${q}_${o} = ${act(`z_${q}`)};`);
      body.push(`{ ${terms.join(' ')} }`);
    }
  }
  return /* wgsl */ `
// mlp_infer: widths [${widths.join(', ')}], hidden ${activation}, output ${outputActivation}; ${rowsPerThread} row(s) per thread.
// Input parts [${parts.join(', ')}] (x1 is bound to x0 when there is one part).
struct Params { rows: u32, x0_stride: u32, x0_offset: u32, x1_stride: u32, x1_offset: u32 }
@group(0) @binding(0) var<storage, read> x0: array<f32>;
@group(0) @binding(1) var<storage, read> x1: array<f32>;
@group(0) @binding(2) var<storage, read> weights: array<f32>;
@group(0) @binding(3) var<storage, read> index: array<i32>;  // ${indexed ? 'the rows to compute' : 'unused (bound to weights)'}
@group(0) @binding(4) var<storage, read_write> y: array<f32>;
@group(0) @binding(5) var<uniform> p: Params;

var<workgroup> w: array<f32, ${layout.params}>;

@compute @workgroup_size(${WORKGROUP})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) groups: vec3u, @builtin(local_invocation_index) lid: u32) {
  // Every thread copies a strided share of the weights; after the barrier each is read at a constant address.
  for (var i = lid; i < ${layout.params}u; i += ${WORKGROUP}u) { w[i] = weights[i]; }
  workgroupBarrier();

  let first = (wid.x + wid.y * groups.x) * ${WORKGROUP * rowsPerThread}u + lid;
  ${Q.map((q) => `let valid_${q} = first + ${q * WORKGROUP}u < p.rows;
  let row_${q} = ${indexed ? `u32(index[min(first + ${q * WORKGROUP}u, p.rows - 1u)])` : `min(first + ${q * WORKGROUP}u, p.rows - 1u)`};
  ${parts.map((_, j) => `let x${j}_${q} = row_${q} * p.x${j}_stride + p.x${j}_offset;`).join(' ')}
  let y_${q} = row_${q} * ${widths[L]}u;`).join('\n  ')}
  ${body.join('\n  ')}
}
`;
}

export const mlpInferKernel = defineKernel<MlpInferShape>({
  name: 'mlp_infer',
  variants: [
    { widths: [3, 1], parts: [3], activation: 'relu', outputActivation: 'none', rowsPerThread: 1, indexed: false },
    { widths: [5, 7, 2], parts: [2, 3], activation: 'tanh', outputActivation: 'sigmoid', rowsPerThread: 2, indexed: true },
  ],
  bindings: [
    { name: 'x0', access: 'read' },
    { name: 'x1', access: 'read' },
    { name: 'weights', access: 'read' },
    { name: 'index', access: 'read' },
    { name: 'y', access: 'rw' },
  ],
  params: [
    { name: 'rows', type: 'u32' },
    { name: 'x0_stride', type: 'u32' },
    { name: 'x0_offset', type: 'u32' },
    { name: 'x1_stride', type: 'u32' },
    { name: 'x1_offset', type: 'u32' },
  ],
  workgroupSize: WORKGROUP,
  wgsl,
});

/** Threads to dispatch for `rows` rows (whole workgroups; the runtime folds the count into a 2-D grid). */
export function mlpInferThreads(rows: number, rowsPerThread: number): number {
  return Math.ceil(rows / (WORKGROUP * rowsPerThread)) * WORKGROUP;
}

const ACTIVATION_REF: Record<InferActivation, (v: number) => number> = {
  none: (v) => v,
  relu: (v) => Math.max(v, 0),
  sigmoid: (v) => 1 / (1 + Math.exp(-v)),
  tanh: Math.tanh,
};

/** float64 reference: the layers one after another, z = W·h + b, h' = act(z). */
export function mlpInferReference(
  x: Float64Array,
  weights: Float64Array,
  rows: number,
  shape: Pick<MlpInferShape, 'widths' | 'activation' | 'outputActivation'>,
): Float64Array {
  const { widths } = shape;
  const layout = mlpLayout(widths);
  const L = widths.length - 1;
  const y = new Float64Array(rows * widths[L]);
  for (let r = 0; r < rows; r++) {
    let h = Array.from(x.subarray(r * widths[0], (r + 1) * widths[0]));
    for (let l = 0; l < L; l++) {
      const [n_in, n_out] = [widths[l], widths[l + 1]];
      const act = ACTIVATION_REF[l === L - 1 ? shape.outputActivation : shape.activation];
      const next: number[] = [];
      for (let o = 0; o < n_out; o++) {
        let z = weights[layout.bias[l] + o];
        for (let i = 0; i < n_in; i++) z += weights[layout.weight[l] + o * n_in + i] * h[i];
        next.push(act(z));
      }
      h = next;
    }
    y.set(h, r * widths[L]);
  }
  return y;
}
