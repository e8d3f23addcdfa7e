/**
 * Fully fused small MLP (every width ≤ 64): y = act_out(W_{L−1} · relu(… relu(W_0 · x + b_0) …) + b_{L−1}).
 *
 * Structural (compile-time consts): the layer count (1…8), hidden activation relu, output activation none or
 * sigmoid. The widths [in, hidden…, out] (layer l maps w_l → w_{l+1}) travel in Params with the row count, so one
 * pipeline serves every width. (A first version baked the widths in and unrolled every layer fully, activations as
 * named registers: lavapipe took 2–3 minutes to compile [32 → 64 → 16]. The loops below compile in about a second.)
 *
 * Flat weight buffer (one tensor holds every parameter), per layer in order: W_l [out_l, in_l] row-major (torch's
 * Linear layout), then b_l [out_l]. `mlpLayout(widths)` gives the offsets; the kernels recompute them from Params.
 *
 *   fused_mlp_forward         four rows per thread (rows r, r+64, r+128, r+192 of a 256-row workgroup tile, as a
 *                             vec4), all layers in one dispatch. Per layer a loop over blocks of 8 outputs, inside
 *                             it a loop over the inputs: one lane-uniform weight load feeds the four rows (a
 *                             broadcast on lavapipe, whose SIMD lanes are invocations), and the inputs are
 *                             lane-contiguous loads. x is first copied, transposed, into `hidden`, and each
 *                             layer's activations go there too (the scratch between layers, kept for backward when
 *                             training), so nothing is indexed dynamically in private memory. No workgroup memory and no barriers (expensive on lavapipe). The
 *                             `var<workgroup>` 32-row-tile variant for real GPUs is not written yet.
 *   fused_mlp_backward        same row mapping, the layers in reverse (blocks of 8 inputs per iteration): dZ_{L−1} = dY ⊙ act_out'(y), then for each
 *                             hidden layer dZ_l = (W_{l+1}ᵀ · dZ_{l+1}) ⊙ [h_l > 0] (relu' from the stored
 *                             activations); writes every dZ_l, and dX = W_0ᵀ · dZ_0 when the input wants a gradient.
 *   fused_mlp_weight_partial  split-K weight (and bias) gradient of one layer: dW = dZᵀ · H, db = Σ_rows dZ. The
 *                             bias is treated as an extra input column of ones, so [out, in + 1] values per layer.
 *                             Workgroup per (8×8 block of (output, input), chunk of rows); each lane sums every
 *                             64th row of the chunk and writes its own slice, partial[slice, flat position] (the
 *                             flat weight layout).
 *   fused_mlp_partial_sum     thread per parameter: grad[i] = Σ_slices partial[slice, i], in slice order
 *                             (deterministic: no atomics).
 *
 * Measured on lavapipe (2-core EPYC, shared machine; `npx tsx bench/fused-mlp.ts`, 65536 rows, medians of 9
 * interleaved rounds, CPU ms of the process, several runs), against `MLP` (one register-blocked matmul per layer):
 *   density [32 → 64 → 16]      forward 0.85–1.4× MLP's CPU time, forward + backward (with dX) 0.95–1.2×
 *   colour  [31 → 64 → 64 → 3]  forward 1.0–1.4×, forward + backward 1.15–1.55×
 * So on lavapipe fusing gains nothing: activations of 64 × 65536 floats stay in the CPU's caches between the
 * matmul dispatches anyway, a dispatch costs ~20 µs, and the matmul kernel's 12-row × 16-column register blocks
 * reuse each load more than a row loop can. HashField keeps `MLP`. The fused path is meant for real GPUs, where
 * launch and memory round trips dominate: untimed there so far.
 *
 * Activation layouts: x [rows, in], y / dY [rows, out] row-major (the op's interface). The stored activations
 * `hidden` (x, then each hidden layer's outputs) and the gradients `dz` are feature-major, [features, rows] (feature f of row r at f·rows + r), one
 * block per layer stacked along features: consecutive threads (rows) touch consecutive addresses, which is a
 * contiguous vector access for lavapipe's lanes and a coalesced one on GPUs.
 */
import { defineKernel } from '../runtime/kernel.ts';

export type MlpOutputActivation = 'none' | 'sigmoid';

export interface FusedMlpShape {
  /** [in, hidden…, out]; every width 1…64, 1…8 layers. */
  widths: readonly number[];
  outputActivation: MlpOutputActivation;
}

export const MAX_FUSED_WIDTH = 64;
const WORKGROUP = 64;

export interface MlpLayout {
  /** Element offset of W_l in the flat weights. */
  weight: number[];
  /** Element offset of b_l in the flat weights. */
  bias: number[];
  /** Total parameter count. */
  params: number;
  /**
   * Feature offset of hidden layer l's activations (outputs of layers 0…L−2) in `hidden` ([features, rows]); the
   * first in_0 features hold the input x, transposed.
   */
  hidden: number[];
  hiddenFeatures: number;
  /** Feature offset of dZ_l (every layer) in `dz` ([features, rows]). */
  dz: number[];
  dzFeatures: number;
}

export function mlpLayout(widths: readonly number[]): MlpLayout {
  const weight: number[] = [];
  const bias: number[] = [];
  const hidden: number[] = [];
  const dz: number[] = [];
  let params = 0;
  let hiddenFeatures = widths[0];
  let dzFeatures = 0;
  for (let l = 0; l + 1 < widths.length; l++) {
    const [n_in, n_out] = [widths[l], widths[l + 1]];
    weight.push(params);
    params += n_out * n_in;
    bias.push(params);
    params += n_out;
    dz.push(dzFeatures);
    dzFeatures += n_out;
    if (l + 2 < widths.length) {
      hidden.push(hiddenFeatures);
      hiddenFeatures += n_out;
    }
  }
  return { weight, bias, params, hidden, hiddenFeatures, dz, dzFeatures };
}

/** Checks a shape's widths (the kernels unroll them, so they must stay small). */
export function checkMlpWidths(widths: readonly number[], who: string): void {
  if (widths.length < 2) throw new Error(`${who}: widths [${widths}] need at least an input and an output width`);
  if (widths.length > MAX_FUSED_LAYERS + 1) throw new Error(`${who}: widths [${widths}] give more than ${MAX_FUSED_LAYERS} layers`);
  for (const w of widths) {
    if (!Number.isInteger(w) || w < 1 || w > MAX_FUSED_WIDTH) {
      throw new Error(`${who}: widths [${widths}] must be integers in 1…${MAX_FUSED_WIDTH} (wider MLPs: MLP / matmul)`);
    }
  }
}

/** Rows per thread: r, r + 64, r + 128, r + 192 (so each lane of a workgroup reads consecutive addresses). */
export const ROWS_PER_THREAD = 4;

/**
 * Row mapping shared by the two row kernels: workgroup g owns rows [256g, 256g + 256), thread lid the rows
 * 256g + lid + 64q (q = 0…3), held as a vec4u; out-of-range rows are clamped for loading and masked for storing.
 * Helpers: `load4(buffer, index expression of one row 'R')` and `store4(buffer, index expression of 'R', value)`.
 */
const rowMapping = `var<private> rows_q: vec4u;    // this thread's four rows, clamped to the last row
var<private> valid_q: vec4<bool>;  // which of them exist`;
const rowSetup = `let group = wid.x + wid.y * groups.x;
  let first = group * ${WORKGROUP * ROWS_PER_THREAD}u + lid;
  if (first >= p.rows) { return; }
  let unclamped = vec4u(first) + vec4u(0u, ${WORKGROUP}u, ${2 * WORKGROUP}u, ${3 * WORKGROUP}u);
  rows_q = min(unclamped, vec4u(p.rows - 1u));
  valid_q = unclamped < vec4u(p.rows);`;
const entry = `@compute @workgroup_size(${WORKGROUP})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) groups: vec3u, @builtin(local_invocation_index) lid: u32)`;
/** A vec4 over the thread's four rows of buffer[index(R)], R standing for the row. */
const load4 = (buffer: string, index: (row: string) => string): string =>
  `vec4f(${['x', 'y', 'z', 'w'].map((c) => `${buffer}[${index(`rows_q.${c}`)}]`).join(', ')})`;
/** Stores value[q] at buffer[index(row q)] for the rows that exist. */
const store4 = (buffer: string, index: (row: string) => string, value: string): string =>
  ['x', 'y', 'z', 'w'].map((c) => `if (valid_q.${c}) { ${buffer}[${index(`rows_q.${c}`)}] = ${value}.${c}; }`).join(' ');

/** Workgroups for `rows` rows (the runtime folds the count into a 2-D grid). */
export function fusedMlpThreads(rows: number): number {
  return Math.ceil(rows / (WORKGROUP * ROWS_PER_THREAD)) * WORKGROUP;
}

/** At most this many layers (the widths w0 … w8 travel in Params). */
export const MAX_FUSED_LAYERS = 8;
const widthParams = Array.from({ length: MAX_FUSED_LAYERS + 1 }, (_, l) => ({ name: `w${l}`, type: 'u32' as const }));
const paramsStruct = `struct Params { rows: u32, ${widthParams.map((w) => `${w.name}: u32`).join(', ')} }`;

/** The Params of both row kernels: the row count and the widths (unused ones 0). */
export function fusedMlpParams(rows: number, widths: readonly number[]): Record<string, number> {
  const params: Record<string, number> = { rows };
  for (let l = 0; l <= MAX_FUSED_LAYERS; l++) params[`w${l}`] = widths[l] ?? 0;
  return params;
}

/**
 * WGSL lets for the layout offsets, from the widths in Params (mirrors `mlpLayout`): wo{l} (W_l), bo{l} (b_l),
 * fo{l} (feature offset of layer l's outputs in `hidden` / `dz`).
 */
function offsetLets(layers: number): string {
  const lines = ['let wo0 = 0u;', 'let fo0 = 0u;'];
  for (let l = 0; l < layers; l++) {
    lines.push(`let bo${l} = wo${l} + p.w${l + 1} * p.w${l};`);
    lines.push(`let wo${l + 1} = bo${l} + p.w${l + 1};`);
    lines.push(`let fo${l + 1} = fo${l} + p.w${l + 1};`);
  }
  return lines.join('\n  ');
}

/** Outputs per loop iteration in the forward (inputs in the backward): each weight load feeds four rows. */
const BLOCK = 16;
const TB = Array.from({ length: BLOCK }, (_, t) => t);

export const fusedMlpForward = defineKernel<{ layers: number; outputActivation: MlpOutputActivation }>({
  name: 'fused_mlp_forward',
  variants: [
    { layers: 2, outputActivation: 'none' },
    { layers: 1, outputActivation: 'sigmoid' },
  ],
  bindings: [
    { name: 'x', access: 'read' },
    { name: 'weights', access: 'read' },
    { name: 'y', access: 'rw' },
    { name: 'hidden', access: 'rw' },
  ],
  params: [{ name: 'rows', type: 'u32' }, ...widthParams],
  workgroupSize: WORKGROUP,
  wgsl: ({ layers, outputActivation }) => {
    const lines: string[] = [];
    // x's rows are strided for the lanes (gathers): copy them once, feature-major, into the head of \`hidden\`.
    lines.push(`for (var k = 0u; k < p.w0; k++) {`);
    lines.push(`  let v = ${load4('x', (r) => `${r} * p.w0 + k`)};`);
    lines.push(`  ${store4('hidden', (r) => `k * p.rows + ${r}`, 'v')}`);
    lines.push(`}`);
    for (let l = 0; l < layers; l++) {
      const last = l === layers - 1;
      const input = load4('hidden', (r) => `(${l === 0 ? '0u' : `p.w0 + fo${l - 1}`} + k) * p.rows + ${r}`);
      lines.push(`// layer ${l}: w${l} → w${l + 1}, ${last ? outputActivation : 'relu'}; z_t = output c+t of the four rows`);
      lines.push(`for (var c = 0u; c < p.w${l + 1}; c += ${BLOCK}u) {`);
      // The last block's padding outputs repeat output w−1: computed, never stored.
      for (const t of TB) lines.push(`  let j${t} = min(c + ${t}u, p.w${l + 1} - 1u);`);
      for (const t of TB) lines.push(`  var z${t} = vec4f(weights[bo${l} + j${t}]);`);
      for (const t of TB) lines.push(`  let w_row${t} = wo${l} + j${t} * p.w${l};`);
      lines.push(`  for (var k = 0u; k < p.w${l}; k++) {`);
      lines.push(`    let a = ${input};`);
      // Loads first, then the FMAs (interleaving them was slower for matmul-blocked on lavapipe).
      for (const t of TB) lines.push(`    let w${t} = weights[w_row${t} + k];`);
      for (const t of TB) lines.push(`    z${t} += a * w${t};`);
      lines.push(`  }`);
      for (const t of TB) {
        const v = last ? (outputActivation === 'sigmoid' ? `(1.0 / (1.0 + exp(-z${t})))` : `z${t}`) : `max(z${t}, vec4f(0.0))`;
        const target = last ? store4('y', (r) => `${r} * p.w${layers} + c + ${t}u`, 'v') : store4('hidden', (r) => `(p.w0 + fo${l} + c + ${t}u) * p.rows + ${r}`, 'v');
        lines.push(`  if (c + ${t}u < p.w${l + 1}) { let v = ${v}; ${target} }`);
      }
      lines.push(`}`);
    }
    return /* wgsl */ `
// fused_mlp_forward, ${layers} layer(s), relu, output ${outputActivation}; see fused-mlp.ts.
${paramsStruct}
@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read> weights: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;
@group(0) @binding(3) var<storage, read_write> hidden: array<f32>;
@group(0) @binding(4) var<uniform> p: Params;
${rowMapping}

${entry} {
  ${rowSetup}
  ${offsetLets(layers)}
  ${lines.join('\n  ')}
}
`;
  },
});

export const fusedMlpBackward = defineKernel<{ layers: number; outputActivation: MlpOutputActivation; inputGrad: boolean }>({
  name: 'fused_mlp_backward',
  variants: [
    { layers: 2, outputActivation: 'none', inputGrad: true },
    { layers: 3, outputActivation: 'sigmoid', inputGrad: false },
  ],
  bindings: [
    { name: 'weights', access: 'read' },
    { name: 'y', access: 'read' },
    { name: 'dy', access: 'read' },
    { name: 'hidden', access: 'read' },
    { name: 'dz', access: 'rw' },
    { name: 'dx', access: 'rw' },
  ],
  params: [{ name: 'rows', type: 'u32' }, ...widthParams],
  workgroupSize: WORKGROUP,
  wgsl: ({ layers, outputActivation, inputGrad }) => {
    const L = layers;
    const lines: string[] = [];
    lines.push(`// output layer ${L - 1}: dZ = dY${outputActivation === 'sigmoid' ? ' · y (1 − y)' : ''}`);
    lines.push(`for (var j = 0u; j < p.w${L}; j++) {`);
    lines.push(`  let dy_j = ${load4('dy', (r) => `${r} * p.w${L} + j`)};`);
    if (outputActivation === 'sigmoid') {
      lines.push(`  let y_j = ${load4('y', (r) => `${r} * p.w${L} + j`)};`);
      lines.push(`  let g = dy_j * y_j * (1.0 - y_j);`);
    } else {
      lines.push(`  let g = dy_j;`);
    }
    lines.push(`  ${store4('dz', (r) => `(fo${L - 1} + j) * p.rows + ${r}`, 'g')}`);
    lines.push(`}`);
    // d_t = dL/d(input c+t of layer l) over the four rows = Σ_j dZ_l[j] · W_l[j, c+t].
    const backThrough = (l: number): string[] => [
      ...TB.map((t) => `  let k${t} = min(c + ${t}u, p.w${l} - 1u);`),
      ...TB.map((t) => `  var d${t} = vec4f(0.0);`),
      `  for (var j = 0u; j < p.w${l + 1}; j++) {`,
      `    let g = ${load4('dz', (r) => `(fo${l} + j) * p.rows + ${r}`)};`,
      `    let w_j = wo${l} + j * p.w${l};`,
      ...TB.map((t) => `    let w${t} = weights[w_j + k${t}];`),
      ...TB.map((t) => `    d${t} += g * w${t};`),
      `  }`,
    ];
    for (let l = L - 2; l >= 0; l--) {
      lines.push(`// hidden layer ${l}: dZ = (W_${l + 1}ᵀ · dZ_${l + 1}) ⊙ [h > 0]`);
      lines.push(`for (var c = 0u; c < p.w${l + 1}; c += ${BLOCK}u) {`);
      lines.push(...backThrough(l + 1));
      for (const t of TB) {
        lines.push(`  if (c + ${t}u < p.w${l + 1}) {`);
        lines.push(`    let f = fo${l} + c + ${t}u;`);
        lines.push(`    let h = ${load4('hidden', (r) => `(p.w0 + f) * p.rows + ${r}`)};`);
        lines.push(`    let g = select(vec4f(0.0), d${t}, h > vec4f(0.0));`);
        lines.push(`    ${store4('dz', (r) => `f * p.rows + ${r}`, 'g')}`);
        lines.push(`  }`);
      }
      lines.push(`}`);
    }
    if (inputGrad) {
      lines.push('// dX = W_0ᵀ · dZ_0');
      lines.push(`for (var c = 0u; c < p.w0; c += ${BLOCK}u) {`);
      lines.push(...backThrough(0));
      for (const t of TB) lines.push(`  if (c + ${t}u < p.w0) { ${store4('dx', (r) => `${r} * p.w0 + c + ${t}u`, `d${t}`)} }`);
      lines.push(`}`);
    }
    return /* wgsl */ `
// fused_mlp_backward, ${layers} layer(s), relu, output ${outputActivation}${inputGrad ? ', with dX' : ''}; see fused-mlp.ts.
${paramsStruct}
@group(0) @binding(0) var<storage, read> weights: array<f32>;
@group(0) @binding(1) var<storage, read> y: array<f32>;
@group(0) @binding(2) var<storage, read> dy: array<f32>;
@group(0) @binding(3) var<storage, read> hidden: array<f32>;
@group(0) @binding(4) var<storage, read_write> dz: array<f32>;
@group(0) @binding(5) var<storage, read_write> dx: array<f32>;
@group(0) @binding(6) var<uniform> p: Params;
${rowMapping}

${entry} {
  ${rowSetup}
  ${offsetLets(layers)}
  ${lines.join('\n  ')}
}
`;
  },
});

/**
 * Split-K gradient of one layer, dW[o, i] = Σ_r dZ[r, o] · H[r, i] and db[o] = Σ_r dZ[r, o]. Addresses:
 * dZ[r, o] = dz[dz_offset + o·rows + r] (feature-major); H[r, i] = h[h_offset + r·h_row + i·h_col] (row-major x:
 * h_row = in, h_col = 1; feature-major hidden: h_row = 1, h_col = rows). Column i = n_in is the bias (H = 1).
 *
 * Thread mapping: workgroup (b, chunk) owns the 8×8 block b of (o, i) (o-block = b / i_blocks, i-block =
 * b % i_blocks) and the rows [chunk·chunk_rows, (chunk+1)·chunk_rows); lane `lid` takes every 64th of those rows, so
 * the lanes load consecutive addresses of dZ and of the hidden activations (vector loads on lavapipe) and no lane
 * talks to another: each writes its own sums as one slice, partial[(chunk·64 + lid)·param_count + flat position],
 * and fused_mlp_partial_sum adds the slices. Out-of-range o, i are clamped for loading and not stored.
 */
/** Outputs × inputs per workgroup block of the weight gradient (inputs a multiple of 4). */
const PARTIAL_OUTPUTS = 8;
const PARTIAL_INPUTS = 8;

export const fusedMlpWeightPartial = defineKernel({
  name: 'fused_mlp_weight_partial',
  bindings: [
    { name: 'dz', access: 'read' },
    { name: 'h', access: 'read' },
    { name: 'partial', access: 'rw' },
  ],
  params: [
    { name: 'rows', type: 'u32' },
    { name: 'chunk_rows', type: 'u32' },
    { name: 'n_out', type: 'u32' },
    { name: 'n_in', type: 'u32' },
    { name: 'dz_offset', type: 'u32' },
    { name: 'h_offset', type: 'u32' },
    { name: 'h_row', type: 'u32' },
    { name: 'h_col', type: 'u32' },
    { name: 'w_offset', type: 'u32' },
    { name: 'b_offset', type: 'u32' },
    { name: 'param_count', type: 'u32' },
  ],
  workgroupSize: WORKGROUP,
  wgsl: () => {
    const OT = Array.from({ length: PARTIAL_OUTPUTS }, (_, t) => t);
    const IV = Array.from({ length: PARTIAL_INPUTS / 4 }, (_, v) => v);
    return /* wgsl */ `
// fused_mlp_weight_partial: dW, db of one layer, a ${PARTIAL_OUTPUTS}×${PARTIAL_INPUTS} (output, input) block per workgroup, rows split over lanes.
struct Params {
  rows: u32, chunk_rows: u32, n_out: u32, n_in: u32, dz_offset: u32, h_offset: u32, h_row: u32, h_col: u32,
  w_offset: u32, b_offset: u32, param_count: u32,
}
@group(0) @binding(0) var<storage, read> dz: array<f32>;
@group(0) @binding(1) var<storage, read> h: array<f32>;
@group(0) @binding(2) var<storage, read_write> partial: array<f32>;
@group(0) @binding(3) var<uniform> p: Params;

@compute @workgroup_size(${WORKGROUP})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32) {
  let i_blocks = (p.n_in + ${PARTIAL_INPUTS}u) / ${PARTIAL_INPUTS}u;  // n_in + 1 columns (the last one is the bias)
  let block = wid.x;
  if (block >= i_blocks * ((p.n_out + ${PARTIAL_OUTPUTS - 1}u) / ${PARTIAL_OUTPUTS}u)) { return; }
  let o0 = (block / i_blocks) * ${PARTIAL_OUTPUTS}u;
  let i0 = (block % i_blocks) * ${PARTIAL_INPUTS}u;
  let chunk = wid.y;
  let r_end = min(p.rows, (chunk + 1u) * p.chunk_rows);

  ${IV.map((v) => `let cols${v} = vec4u(i0 + ${4 * v}u) + vec4u(0u, 1u, 2u, 3u);
  let is_weight${v} = cols${v} < vec4u(p.n_in);
  let h_col${v} = vec4u(p.h_offset) + min(cols${v}, vec4u(p.n_in - 1u)) * p.h_col;`).join('\n  ')}
  ${OT.map((t) => `let dz_col${t} = p.dz_offset + min(o0 + ${t}u, p.n_out - 1u) * p.rows;`).join('\n  ')}
  ${OT.flatMap((t) => IV.map((v) => `var acc${t}_${v} = vec4f(0.0);`)).join('\n  ')}
  for (var r = chunk * p.chunk_rows + lid; r < r_end; r += ${WORKGROUP}u) {
    // Loads first, then the FMAs.
    ${IV.map((v) => `let h_at${v} = h_col${v} + vec4u(r * p.h_row);
    let h_r${v} = select(vec4f(1.0), vec4f(h[h_at${v}.x], h[h_at${v}.y], h[h_at${v}.z], h[h_at${v}.w]), is_weight${v});`).join('\n    ')}
    ${OT.map((t) => `let dz${t} = dz[dz_col${t} + r];`).join('\n    ')}
    ${OT.flatMap((t) => IV.map((v) => `acc${t}_${v} += dz${t} * h_r${v};`)).join('\n    ')}
  }

  let base = (chunk * ${WORKGROUP}u + lid) * p.param_count;
  let acc = array<vec4f, ${PARTIAL_OUTPUTS * IV.length}>(${OT.flatMap((t) => IV.map((v) => `acc${t}_${v}`)).join(', ')});
  for (var a = 0u; a < ${PARTIAL_OUTPUTS}u; a++) {
    let out_index = o0 + a;
    if (out_index >= p.n_out) { break; }
    for (var b = 0u; b < ${PARTIAL_INPUTS}u; b++) {
      let in_index = i0 + b;
      if (in_index > p.n_in) { break; }
      let at = select(p.b_offset + out_index, p.w_offset + out_index * p.n_in + in_index, in_index < p.n_in);
      partial[base + at] = acc[a * ${IV.length}u + b / 4u][b % 4u];
    }
  }
}
`;
  },
});

/** grad[i] = Σ_s partial[s · count + i], slices s = 0 … chunks − 1 in order. Thread per parameter. */
export const fusedMlpPartialSum = defineKernel({
  name: 'fused_mlp_partial_sum',
  bindings: [
    { name: 'partial', access: 'read' },
    { name: 'grad', access: 'rw' },
  ],
  params: [
    { name: 'count', type: 'u32' },
    { name: 'chunks', type: 'u32' },
  ],
  workgroupSize: WORKGROUP,
  wgsl: () => /* wgsl */ `
// fused_mlp_partial_sum: the deterministic second pass of the split-K weight gradient.
struct Params { count: u32, chunks: u32 }
@group(0) @binding(0) var<storage, read> partial: array<f32>;
@group(0) @binding(1) var<storage, read_write> grad: array<f32>;
@group(0) @binding(2) var<uniform> p: Params;

@compute @workgroup_size(${WORKGROUP})
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) groups: vec3u) {
  let i = gid.x + gid.y * groups.x * ${WORKGROUP}u;
  if (i >= p.count) { return; }
  var total = 0.0;
  for (var c = 0u; c < p.chunks; c++) { total += partial[c * p.count + i]; }
  grad[i] = total;
}
`,
});

/** Rows per split-K chunk: enough chunks to occupy every core, few enough that the partials stay small. */
export function splitKChunkRows(rows: number): number {
  // Each lane sums ≥ 256 rows (chunk_rows / 64) and there are at most 4 chunks (so 256 slices of partials).
  return Math.max(WORKGROUP * 256, Math.ceil(rows / 4));
}

/** Slices of partial sums (one per lane per chunk) for `rows` rows. */
export function splitKSlices(rows: number): number {
  return Math.max(1, Math.ceil(rows / splitKChunkRows(rows))) * WORKGROUP;
}

/** Workgroups of fused_mlp_weight_partial for one layer. */
export function weightPartialGrid(n_out: number, n_in: number, chunks: number): [number, number, number] {
  return [Math.ceil(n_out / PARTIAL_OUTPUTS) * Math.ceil((n_in + 1) / PARTIAL_INPUTS), chunks, 1];
}

// ---------------------------------------------------------------------------------------------------------------
// float64 reference

export interface MlpReferenceForward {
  /** [rows, out] */
  y: Float64Array;
  /** Per hidden layer: its activations [rows, width] (row-major). */
  hidden: Float64Array[];
}

/** Plain forward: h_{l+1} = relu(W_l h_l + b_l), y = act_out(W_{L−1} h_{L−1} + b_{L−1}). */
export function fusedMlpReference(x: Float64Array, weights: Float64Array, rows: number, shape: FusedMlpShape): MlpReferenceForward {
  const { widths, outputActivation } = shape;
  const layout = mlpLayout(widths);
  const L = widths.length - 1;
  const hidden: Float64Array[] = [];
  let h = x;
  for (let l = 0; l < L; l++) {
    const [n_in, n_out] = [widths[l], widths[l + 1]];
    const next = new Float64Array(rows * n_out);
    for (let r = 0; r < rows; r++) {
      for (let j = 0; j < n_out; j++) {
        let z = weights[layout.bias[l] + j];
        for (let k = 0; k < n_in; k++) z += weights[layout.weight[l] + j * n_in + k] * h[r * n_in + k];
        const last = l === L - 1;
        next[r * n_out + j] = !last ? Math.max(z, 0) : outputActivation === 'sigmoid' ? 1 / (1 + Math.exp(-z)) : z;
      }
    }
    if (l < L - 1) hidden.push(next);
    h = next;
  }
  return { y: h, hidden };
}

/** Backward by the chain rule: dZ per layer, then dW_l = dZ_lᵀ · h_l, db_l = Σ_r dZ_l, dX = dZ_0 · W_0. */
export function fusedMlpBackwardReference(
  x: Float64Array,
  weights: Float64Array,
  dL_dy: Float64Array,
  rows: number,
  shape: FusedMlpShape,
): { dx: Float64Array; dweights: Float64Array } {
  const { widths, outputActivation } = shape;
  const layout = mlpLayout(widths);
  const L = widths.length - 1;
  const { y, hidden } = fusedMlpReference(x, weights, rows, shape);
  const inputs = [x, ...hidden];
  const dweights = new Float64Array(layout.params);
  let dz = dL_dy.map((g, i) => (outputActivation === 'sigmoid' ? g * y[i] * (1 - y[i]) : g));
  let dx = new Float64Array(0);
  for (let l = L - 1; l >= 0; l--) {
    const [n_in, n_out] = [widths[l], widths[l + 1]];
    const h = inputs[l];
    const dh = new Float64Array(rows * n_in);
    for (let r = 0; r < rows; r++) {
      for (let j = 0; j < n_out; j++) {
        const g = dz[r * n_out + j];
        dweights[layout.bias[l] + j] += g;
        for (let k = 0; k < n_in; k++) {
          dweights[layout.weight[l] + j * n_in + k] += g * h[r * n_in + k];
          dh[r * n_in + k] += g * weights[layout.weight[l] + j * n_in + k];
        }
      }
    }
    if (l === 0) dx = dh;
    else dz = dh.map((g, i) => (h[i] > 0 ? g : 0));
  }
  return { dx, dweights };
}
