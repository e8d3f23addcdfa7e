/**
 * Binary elementwise kernels with broadcasting: y = f(a, b), and the partials dL/da_full = dL/dy · ∂f/∂a (or b)
 * in the output's shape (the op layer then sums them down to each input's shape).
 *
 * Thread mapping: one thread per output element i (x folded into y past 65535 workgroups).
 * Layout: y is contiguous in the broadcast output shape (rank ≤ 6, `dim0..5`). a and b are contiguous in their own
 * shapes and read through strides aligned to the output's dimensions, 0 on broadcast dimensions:
 *   a_index = Σ_k coord_k(i) · a_stride_k, likewise b. With `broadcast: false` both are read at i.
 */
import { defineKernel } from '../runtime/kernel.ts';
import { walkCoordinates } from '../common/coordinates.ts';
import { MAX_RANK, VEC4_WORKGROUP } from './unary.ts';

export interface BinaryOp {
  wgsl: string;
  ref: (a: number, b: number) => number;
  /** ∂y/∂a and ∂y/∂b as WGSL expressions of a, b, y; absent for ops without a gradient (comparisons). */
  da?: string;
  db?: string;
  daRef?: (a: number, b: number, y: number) => number;
  dbRef?: (a: number, b: number, y: number) => number;
}

export const BINARY_OPS = {
  add: { wgsl: 'a + b', ref: (a, b) => a + b, da: '1.0', db: '1.0', daRef: () => 1, dbRef: () => 1 },
  sub: { wgsl: 'a - b', ref: (a, b) => a - b, da: '1.0', db: '-1.0', daRef: () => 1, dbRef: () => -1 },
  mul: { wgsl: 'a * b', ref: (a, b) => a * b, da: 'b', db: 'a', daRef: (_a, b) => b, dbRef: (a) => a },
  div: { wgsl: 'a / b', ref: (a, b) => a / b, da: '1.0 / b', db: '-a / (b * b)', daRef: (_a, b) => 1 / b, dbRef: (a, b) => -a / (b * b) },
  // pow for tensor exponents: defined for a > 0 (use pow_scalar for negative bases with integer exponents).
  pow: {
    wgsl: 'pow(a, b)',
    ref: (a, b) => a ** b,
    da: 'b * pow(a, b - 1.0)',
    db: 'y * log(a)',
    daRef: (a, b) => b * a ** (b - 1),
    dbRef: (a, _b, y) => y * Math.log(a),
  },
  // Ties send the gradient to a (as torch.maximum does not; documented choice: the first argument wins).
  maximum: {
    wgsl: 'max(a, b)',
    ref: Math.max,
    da: 'select(0.0, 1.0, a >= b)',
    db: 'select(0.0, 1.0, a < b)',
    daRef: (a, b) => (a >= b ? 1 : 0),
    dbRef: (a, b) => (a < b ? 1 : 0),
  },
  minimum: {
    wgsl: 'min(a, b)',
    ref: Math.min,
    da: 'select(0.0, 1.0, a <= b)',
    db: 'select(0.0, 1.0, a > b)',
    daRef: (a, b) => (a <= b ? 1 : 0),
    dbRef: (a, b) => (a > b ? 1 : 0),
  },
  eq: { wgsl: 'select(0.0, 1.0, a == b)', ref: (a, b) => (a === b ? 1 : 0) },
  gt: { wgsl: 'select(0.0, 1.0, a > b)', ref: (a, b) => (a > b ? 1 : 0) },
  ge: { wgsl: 'select(0.0, 1.0, a >= b)', ref: (a, b) => (a >= b ? 1 : 0) },
  lt: { wgsl: 'select(0.0, 1.0, a < b)', ref: (a, b) => (a < b ? 1 : 0) },
} satisfies Record<string, BinaryOp>;

export type BinaryOpName = keyof typeof BINARY_OPS;

const WORKGROUP = 64;
/** `prefix0, prefix1, …` (with `suffix` after each: struct members `dim0: u32, …`). */
const dimList = (prefix: string, suffix = ''): string => Array.from({ length: MAX_RANK }, (_, k) => `${prefix}${k}${suffix}`).join(', ');
const u32Params = (prefix: string) => Array.from({ length: MAX_RANK }, (_, k) => ({ name: `${prefix}${k}`, type: 'u32' as const }));

const BINARY_PARAMS = [{ name: 'n', type: 'u32' as const }, { name: 'rank', type: 'u32' as const }, ...u32Params('dim'), ...u32Params('a_stride'), ...u32Params('b_stride')];

const paramsStruct = `struct Params {
  n: u32, rank: u32,
  ${dimList('dim', ': u32')},
  ${dimList('a_stride', ': u32')},
  ${dimList('b_stride', ': u32')},
}`;

const indexFunction = (broadcast: boolean): string =>
  broadcast
    ? `
// Returns (a_index, b_index) of output element i.
fn operand_indices(i: u32) -> vec2u {
  var index = vec2u(0u, 0u);
  ${walkCoordinates(MAX_RANK, 'i', (k, c) => `index += ${c} * vec2u(p.a_stride${k}, p.b_stride${k});`)}
  return index;
}`
    : `
fn operand_indices(i: u32) -> vec2u { return vec2u(i, i); }`;

export const binaryForward = defineKernel<{ op: BinaryOpName; broadcast: boolean }>({
  name: 'binary_forward',
  variants: [{ op: 'mul', broadcast: true }, { op: 'add', broadcast: false }],
  bindings: [
    { name: 'a', access: 'read' },
    { name: 'b', access: 'read' },
    { name: 'y', access: 'rw' },
  ],
  params: BINARY_PARAMS,
  workgroupSize: WORKGROUP,
  wgsl: ({ op, broadcast }) => /* wgsl */ `
// binary_forward(${op}${broadcast ? ', broadcast' : ''}): y[i] = ${BINARY_OPS[op].wgsl}
${paramsStruct}
@group(0) @binding(0) var<storage, read> a_in: array<f32>;
@group(0) @binding(1) var<storage, read> b_in: array<f32>;
@group(0) @binding(2) var<storage, read_write> y_out: array<f32>;
@group(0) @binding(3) var<uniform> p: Params;
${indexFunction(broadcast)}

@compute @workgroup_size(${WORKGROUP})
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) groups: vec3u) {
  let i = gid.x + gid.y * groups.x * ${WORKGROUP}u;
  if (i >= p.n) { return; }
  let index = operand_indices(i);
  let a = a_in[index.x];
  let b = b_in[index.y];
  y_out[i] = ${BINARY_OPS[op].wgsl};
}
`,
});

/** dL/d(operand) in the output's shape: dL_dy[i] · ∂f/∂operand(a, b, y). */
export const binaryBackward = defineKernel<{ op: BinaryOpName; broadcast: boolean; wrt: 'a' | 'b' }>({
  name: 'binary_backward',
  variants: [{ op: 'div', broadcast: true, wrt: 'b' }],
  bindings: [
    { name: 'a', access: 'read' },
    { name: 'b', access: 'read' },
    { name: 'y', access: 'read' },
    { name: 'dL_dy', access: 'read' },
    { name: 'dL_doperand', access: 'rw' },
  ],
  params: BINARY_PARAMS,
  workgroupSize: WORKGROUP,
  wgsl: ({ op, broadcast, wrt }) => {
    const row = BINARY_OPS[op] as BinaryOp;
    const partial = wrt === 'a' ? row.da : row.db;
    if (!partial) throw new Error(`binary op ${op} has no derivative`);
    return /* wgsl */ `
// binary_backward(${op}, d/d${wrt}): dL_d${wrt}_full[i] = dL_dy[i] * (${partial})
${paramsStruct}
@group(0) @binding(0) var<storage, read> a_in: array<f32>;
@group(0) @binding(1) var<storage, read> b_in: array<f32>;
@group(0) @binding(2) var<storage, read> y_in: array<f32>;
@group(0) @binding(3) var<storage, read> dL_dy: array<f32>;
@group(0) @binding(4) var<storage, read_write> dL_doperand: array<f32>;
@group(0) @binding(5) var<uniform> p: Params;
${indexFunction(broadcast)}

@compute @workgroup_size(${WORKGROUP})
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) groups: vec3u) {
  let i = gid.x + gid.y * groups.x * ${WORKGROUP}u;
  if (i >= p.n) { return; }
  let index = operand_indices(i);
  let a = a_in[index.x];
  let b = b_in[index.y];
  let y = y_in[i];
  dL_doperand[i] = dL_dy[i] * (${partial});
}
`;
  },
});

/** target[i] += addend[i]: gradient accumulation in place (a separate kernel: a buffer cannot be bound twice). */
export const accumulateKernel = defineKernel({
  name: 'accumulate',
  bindings: [
    { name: 'addend', access: 'read' },
    { name: 'accumulator', access: 'rw' },
  ],
  params: [{ name: 'n', type: 'u32' }],
  workgroupSize: WORKGROUP,
  wgsl: () => /* wgsl */ `
// accumulate: accumulator[i] += addend[i]
struct Params { n: u32 }
@group(0) @binding(0) var<storage, read> addend: array<f32>;
@group(0) @binding(1) var<storage, read_write> accumulator: array<f32>;
@group(0) @binding(2) var<uniform> p: Params;

@compute @workgroup_size(${WORKGROUP})
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) groups: vec3u) {
  let i = gid.x + gid.y * groups.x * ${WORKGROUP}u;
  if (i >= p.n) { return; }
  accumulator[i] += addend[i];
}
`,
});

// ---------------------------------------------------------------------------------------------------------------
// vec4 fast path: a and b of the output's shape (no broadcast), contiguous, length a multiple of 4. Same grid-stride
// thread mapping as the unary vec4 kernels (see unary.ts, `elementwiseVec4Grid`); the op's scalar expression is
// applied per component.

export const binaryForwardVec4 = defineKernel<{ op: BinaryOpName }>({
  name: 'binary_forward_vec4',
  variants: [{ op: 'maximum' }],
  bindings: [
    { name: 'a', access: 'read' },
    { name: 'b', access: 'read' },
    { name: 'y', access: 'rw' },
  ],
  params: [{ name: 'n4', type: 'u32' }],
  workgroupSize: VEC4_WORKGROUP,
  wgsl: ({ op }) => /* wgsl */ `
// binary_forward_vec4(${op}): y[i] = ${BINARY_OPS[op].wgsl} per component, all contiguous, as vec4s.
struct Params { n4: u32 }
@group(0) @binding(0) var<storage, read> a_in: array<vec4f>;
@group(0) @binding(1) var<storage, read> b_in: array<vec4f>;
@group(0) @binding(2) var<storage, read_write> y_out: array<vec4f>;
@group(0) @binding(3) var<uniform> p: Params;

fn f(a: f32, b: f32) -> f32 { return ${BINARY_OPS[op].wgsl}; }

@compute @workgroup_size(${VEC4_WORKGROUP})
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) groups: vec3u) {
  let stride = groups.x * ${VEC4_WORKGROUP}u;
  for (var i = gid.x; i < p.n4; i += stride) {
    let a = a_in[i];
    let b = b_in[i];
    y_out[i] = vec4f(f(a.x, b.x), f(a.y, b.y), f(a.z, b.z), f(a.w, b.w));
  }
}
`,
});

export const binaryBackwardVec4 = defineKernel<{ op: BinaryOpName; wrt: 'a' | 'b' }>({
  name: 'binary_backward_vec4',
  variants: [{ op: 'div', wrt: 'b' }],
  bindings: [
    { name: 'a', access: 'read' },
    { name: 'b', access: 'read' },
    { name: 'y', access: 'read' },
    { name: 'dL_dy', access: 'read' },
    { name: 'dL_doperand', access: 'rw' },
  ],
  params: [{ name: 'n4', type: 'u32' }],
  workgroupSize: VEC4_WORKGROUP,
  wgsl: ({ op, wrt }) => {
    const row = BINARY_OPS[op] as BinaryOp;
    const partial = wrt === 'a' ? row.da : row.db;
    if (!partial) throw new Error(`binary op ${op} has no derivative`);
    return /* wgsl */ `
// binary_backward_vec4(${op}, d/d${wrt}): dL_d${wrt}[i] = dL_dy[i] * (${partial}) per component, all contiguous, as vec4s.
struct Params { n4: u32 }
@group(0) @binding(0) var<storage, read> a_in: array<vec4f>;
@group(0) @binding(1) var<storage, read> b_in: array<vec4f>;
@group(0) @binding(2) var<storage, read> y_in: array<vec4f>;
@group(0) @binding(3) var<storage, read> dL_dy: array<vec4f>;
@group(0) @binding(4) var<storage, read_write> dL_doperand: array<vec4f>;
@group(0) @binding(5) var<uniform> p: Params;

fn df(a: f32, b: f32, y: f32) -> f32 { return ${partial}; }

@compute @workgroup_size(${VEC4_WORKGROUP})
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) groups: vec3u) {
  let stride = groups.x * ${VEC4_WORKGROUP}u;
  for (var i = gid.x; i < p.n4; i += stride) {
    let a = a_in[i];
    let b = b_in[i];
    let y = y_in[i];
    dL_doperand[i] = dL_dy[i] * vec4f(df(a.x, b.x, y.x), df(a.y, b.y, y.y), df(a.z, b.z, y.z), df(a.w, b.w, y.w));
  }
}
`;
  },
});

/** accumulator[i] += addend[i] over vec4s (contiguous, length a multiple of 4; grid-stride as above). */
export const accumulateVec4Kernel = defineKernel({
  name: 'accumulate_vec4',
  bindings: [
    { name: 'addend', access: 'read' },
    { name: 'accumulator', access: 'rw' },
  ],
  params: [{ name: 'n4', type: 'u32' }],
  workgroupSize: VEC4_WORKGROUP,
  wgsl: () => /* wgsl */ `
// accumulate_vec4: accumulator[i] += addend[i], as vec4s
struct Params { n4: u32 }
@group(0) @binding(0) var<storage, read> addend: array<vec4f>;
@group(0) @binding(1) var<storage, read_write> accumulator: array<vec4f>;
@group(0) @binding(2) var<uniform> p: Params;

@compute @workgroup_size(${VEC4_WORKGROUP})
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) groups: vec3u) {
  let stride = groups.x * ${VEC4_WORKGROUP}u;
  for (var i = gid.x; i < p.n4; i += stride) { accumulator[i] += addend[i]; }
}
`,
});

// ---------------------------------------------------------------------------------------------------------------
// float64 references (broadcasting by NumPy's rules, written independently of the kernel's stride arithmetic)

export function broadcastShapes(a: readonly number[], b: readonly number[]): number[] {
  const rank = Math.max(a.length, b.length);
  const out: number[] = [];
  for (let k = 0; k < rank; k++) {
    const da = a[a.length - rank + k] ?? 1;
    const db = b[b.length - rank + k] ?? 1;
    if (da !== db && da !== 1 && db !== 1) throw new Error(`shapes [${a}] and [${b}] do not broadcast`);
    out.push(da === 1 ? db : da);
  }
  return out;
}

/** The element of `data` (shape `shape`) that broadcasts to coordinate `coord` of the output. */
function broadcastRead(data: Float64Array, shape: readonly number[], coord: readonly number[]): number {
  let index = 0;
  const offset = coord.length - shape.length;
  for (let k = 0; k < shape.length; k++) index = index * shape[k] + (shape[k] === 1 ? 0 : coord[offset + k]);
  return data[index];
}

function coordsOf(i: number, shape: readonly number[]): number[] {
  const coord = new Array<number>(shape.length);
  for (let k = shape.length - 1; k >= 0; k--) {
    coord[k] = i % shape[k];
    i = Math.floor(i / shape[k]);
  }
  return coord;
}

export function binaryReference(op: BinaryOpName, a: Float64Array, aShape: number[], b: Float64Array, bShape: number[]): Float64Array {
  const shape = broadcastShapes(aShape, bShape);
  const n = shape.reduce((x, y) => x * y, 1);
  const f = BINARY_OPS[op].ref as BinaryOp['ref'];
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const c = coordsOf(i, shape);
    out[i] = f(broadcastRead(a, aShape, c), broadcastRead(b, bShape, c));
  }
  return out;
}

/** Reference gradients of both operands, summed over their broadcast dimensions. */
export function binaryBackwardReference(
  op: BinaryOpName,
  a: Float64Array,
  aShape: number[],
  b: Float64Array,
  bShape: number[],
  dL_dy: Float64Array,
): [Float64Array, Float64Array] {
  const row = BINARY_OPS[op] as BinaryOp;
  if (!row.daRef || !row.dbRef) throw new Error(`binary op ${op} has no derivative`);
  const shape = broadcastShapes(aShape, bShape);
  const dA = new Float64Array(a.length);
  const dB = new Float64Array(b.length);
  const flatIndex = (s: readonly number[], c: readonly number[]): number => {
    let index = 0;
    const offset = c.length - s.length;
    for (let k = 0; k < s.length; k++) index = index * s[k] + (s[k] === 1 ? 0 : c[offset + k]);
    return index;
  };
  for (let i = 0; i < dL_dy.length; i++) {
    const c = coordsOf(i, shape);
    const ia = flatIndex(aShape, c);
    const ib = flatIndex(bShape, c);
    const y = row.ref(a[ia], b[ib]);
    dA[ia] += dL_dy[i] * row.daRef(a[ia], b[ib], y);
    dB[ib] += dL_dy[i] * row.dbRef(a[ia], b[ib], y);
  }
  return [dA, dB];
}
