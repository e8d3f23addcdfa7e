/**
 * Unary elementwise kernels: y = f(x), and the backward dL/dx = dL/dy · f'(x, y).
 *
 * One table row per op gives the WGSL expression, the float64 reference and the derivative; the kernels below are
 * generated from a row (consts.op). Scalars `a` and `b` parameterise ops such as leaky_relu(a), clamp(a, b), pow(x, a).
 *
 * Forward thread mapping: one thread per output element, i = flat index (x folded into y past 65535 workgroups).
 * Input layout: x is read through strides (`strided` const), so the same kernel also materialises permutes,
 * broadcasts (stride 0) and slices (an element offset): x_index = offset + Σ_k coord_k(i) · stride_k, where
 * coord_k are the coordinates of i in the output shape (rank ≤ 6, dims and strides in Params). Output is contiguous.
 *
 * Backward thread mapping: one thread per element; x, y, dL_dy, dL_dx all contiguous and the same size.
 */
import { defineKernel } from '../runtime/kernel.ts';
import { walkCoordinates } from '../common/coordinates.ts';

export interface UnaryOp {
  /** y as a WGSL expression of `x` (f32) and the scalars `a`, `b`. */
  wgsl: string;
  /** The float64 reference: reads like the math. */
  ref: (x: number, a: number, b: number) => number;
  /** dy/dx as a WGSL expression of x, y, a, b; absent for ops without a gradient. */
  dwgsl?: string;
  /** dy/dx in float64. */
  dref?: (x: number, y: number, a: number, b: number) => number;
}

const sigmoid = (x: number): number => 1 / (1 + Math.exp(-x));
const softplus = (x: number): number => (x > 20 ? x : Math.log1p(Math.exp(x)));

export const UNARY_OPS = {
  identity: { wgsl: 'x', ref: (x) => x, dwgsl: '1.0', dref: () => 1 },
  neg: { wgsl: '-x', ref: (x) => -x, dwgsl: '-1.0', dref: () => -1 },
  exp: { wgsl: 'exp(x)', ref: Math.exp, dwgsl: 'y', dref: (_x, y) => y },
  log: { wgsl: 'log(x)', ref: Math.log, dwgsl: '1.0 / x', dref: (x) => 1 / x },
  sqrt: { wgsl: 'sqrt(x)', ref: Math.sqrt, dwgsl: '0.5 / y', dref: (_x, y) => 0.5 / y },
  abs: { wgsl: 'abs(x)', ref: Math.abs, dwgsl: 'sign(x)', dref: (x) => Math.sign(x) },
  relu: { wgsl: 'max(x, 0.0)', ref: (x) => Math.max(x, 0), dwgsl: 'select(0.0, 1.0, x > 0.0)', dref: (x) => (x > 0 ? 1 : 0) },
  leaky_relu: {
    wgsl: 'select(a * x, x, x > 0.0)',
    ref: (x, a) => (x > 0 ? x : a * x),
    dwgsl: 'select(a, 1.0, x > 0.0)',
    dref: (x, _y, a) => (x > 0 ? 1 : a),
  },
  sigmoid: { wgsl: '1.0 / (1.0 + exp(-x))', ref: sigmoid, dwgsl: 'y * (1.0 - y)', dref: (_x, y) => y * (1 - y) },
  tanh: { wgsl: 'tanh(x)', ref: Math.tanh, dwgsl: '1.0 - y * y', dref: (_x, y) => 1 - y * y },
  // softplus(x) = log(1 + e^x), computed without overflow; its derivative is sigmoid(x).
  softplus: {
    wgsl: 'select(log(1.0 + exp(x)), x, x > 20.0)',
    ref: softplus,
    dwgsl: '1.0 / (1.0 + exp(-x))',
    dref: (x) => sigmoid(x),
  },
  clamp: {
    wgsl: 'clamp(x, a, b)',
    ref: (x, a, b) => Math.min(Math.max(x, a), b),
    dwgsl: 'select(0.0, 1.0, x >= a && x <= b)',
    dref: (x, _y, a, b) => (x >= a && x <= b ? 1 : 0),
  },
  /** x^a for a scalar exponent a. */
  pow_scalar: {
    wgsl: 'pow_signed(x, a)',
    ref: (x, a) => x ** a,
    dwgsl: 'a * pow_signed(x, a - 1.0)',
    dref: (x, _y, a) => a * x ** (a - 1),
  },
  /** a·x + b (scale and shift by scalars). */
  affine: { wgsl: 'a * x + b', ref: (x, a, b) => a * x + b, dwgsl: 'a', dref: (_x, _y, a) => a },
  reciprocal: { wgsl: '1.0 / x', ref: (x) => 1 / x, dwgsl: '-y * y', dref: (_x, y) => -y * y },
  square: { wgsl: 'x * x', ref: (x) => x * x, dwgsl: '2.0 * x', dref: (x) => 2 * x },
  sin: { wgsl: 'sin(x)', ref: Math.sin, dwgsl: 'cos(x)', dref: (x) => Math.cos(x) },
  cos: { wgsl: 'cos(x)', ref: Math.cos, dwgsl: '-sin(x)', dref: (x) => -Math.sin(x) },
  sign: { wgsl: 'sign(x)', ref: Math.sign },
  step: { wgsl: 'select(0.0, 1.0, x > 0.0)', ref: (x) => (x > 0 ? 1 : 0) },
} satisfies Record<string, UnaryOp>;

export type UnaryOpName = keyof typeof UNARY_OPS;

export const MAX_RANK = 6;
const WORKGROUP = 64;

/** WGSL pow() is undefined for negative bases; integer exponents of negative bases are common (x^2, x^3). */
const POW_SIGNED = /* wgsl */ `
fn pow_signed(x: f32, e: f32) -> f32 {
  if (x >= 0.0) { return pow(x, e); }
  let magnitude = pow(-x, e);
  if (e == floor(e)) { return select(magnitude, -magnitude, (i32(e) & 1) == 1); }
  return pow(x, e); // negative base, fractional exponent: undefined (NaN on most devices), as in IEEE pow
}`;

/** `prefix0, prefix1, …` (with `suffix` after each: struct members `dim0: u32, …`). */
const dimList = (prefix: string, suffix = ''): string => Array.from({ length: MAX_RANK }, (_, k) => `${prefix}${k}${suffix}`).join(', ');

export const unaryForward = defineKernel<{ op: UnaryOpName; strided: boolean }>({
  name: 'unary_forward',
  variants: [{ op: 'exp', strided: false }, { op: 'identity', strided: true }],
  bindings: [
    { name: 'x', access: 'read' },
    { name: 'y', access: 'rw' },
  ],
  params: [
    { name: 'n', type: 'u32' },
    { name: 'rank', type: 'u32' },
    { name: 'x_offset', type: 'u32' },
    ...Array.from({ length: MAX_RANK }, (_, k) => ({ name: `dim${k}`, type: 'u32' as const })),
    ...Array.from({ length: MAX_RANK }, (_, k) => ({ name: `x_stride${k}`, type: 'u32' as const })),
    { name: 'a', type: 'f32' },
    { name: 'b', type: 'f32' },
  ],
  workgroupSize: WORKGROUP,
  wgsl: ({ op, strided }) => /* wgsl */ `
// unary_forward(${op}${strided ? ', strided input' : ''}): y[i] = ${UNARY_OPS[op].wgsl}
struct Params {
  n: u32, rank: u32, x_offset: u32,
  ${dimList('dim', ': u32')},
  ${dimList('x_stride', ': u32')},
  a: f32, b: f32,
}
@group(0) @binding(0) var<storage, read> x_in: array<f32>;
@group(0) @binding(1) var<storage, read_write> y_out: array<f32>;
@group(0) @binding(2) var<uniform> p: Params;
${POW_SIGNED}

fn x_index(i: u32) -> u32 {
  ${
    strided
      ? `var index = p.x_offset;
  ${walkCoordinates(MAX_RANK, 'i', (k, c) => `index += ${c} * p.x_stride${k};`)}
  return index;`
      : 'return i;'
  }
}

@compute @workgroup_size(${WORKGROUP})
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) groups: vec3u) {
  let i = gid.x + gid.y * groups.x * ${WORKGROUP}u;
  if (i >= p.n) { return; }
  let a = p.a;
  let b = p.b;
  let x = x_in[x_index(i)];
  y_out[i] = ${UNARY_OPS[op].wgsl};
}
`,
});

export const unaryBackward = defineKernel<{ op: UnaryOpName }>({
  name: 'unary_backward',
  variants: [{ op: 'tanh' }],
  bindings: [
    { name: 'x', access: 'read' },
    { name: 'y', access: 'read' },
    { name: 'dL_dy', access: 'read' },
    { name: 'dL_dx', access: 'rw' },
  ],
  params: [
    { name: 'n', type: 'u32' },
    { name: 'a', type: 'f32' },
    { name: 'b', type: 'f32' },
  ],
  workgroupSize: WORKGROUP,
  wgsl: ({ op }) => {
    const derivative = (UNARY_OPS[op] as UnaryOp).dwgsl;
    if (!derivative) throw new Error(`unary op ${op} has no derivative`);
    return /* wgsl */ `
// unary_backward(${op}): dL_dx[i] = dL_dy[i] * (${derivative})
struct Params { n: u32, a: f32, b: f32 }
@group(0) @binding(0) var<storage, read> x_in: array<f32>;
@group(0) @binding(1) var<storage, read> y_in: array<f32>;
@group(0) @binding(2) var<storage, read> dL_dy: array<f32>;
@group(0) @binding(3) var<storage, read_write> dL_dx: array<f32>;
@group(0) @binding(4) var<uniform> p: Params;
${POW_SIGNED}

@compute @workgroup_size(${WORKGROUP})
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) groups: vec3u) {
  let i = gid.x + gid.y * groups.x * ${WORKGROUP}u;
  if (i >= p.n) { return; }
  let a = p.a;
  let b = p.b;
  let x = x_in[i];
  let y = y_in[i];
  dL_dx[i] = dL_dy[i] * (${derivative});
}
`;
  },
});

// ---------------------------------------------------------------------------------------------------------------
// vec4 fast path for contiguous data whose length is a multiple of 4 (measured in `npm run bench`: on lavapipe a
// vec4 grid-stride loop over few workgroups moves several times the bytes per second of one scalar per thread).
//
// Thread mapping: a grid-stride loop. Thread g = global id handles vec4s g, g + T, g + 2T, … (T = threads in the
// grid), so a small, adapter-chosen grid (`elementwiseVec4Grid`) covers any length. Neighbouring threads touch
// neighbouring vec4s. The op's scalar expression is applied per component through a helper function: on lavapipe
// each component is its own SIMD register anyway, so nothing is lost against hand-written vec4 math.

export const VEC4_WORKGROUP = 64;

/**
 * Workgroups for a vec4 grid-stride loop over n4 vec4s. CPU adapters (lavapipe) pay per workgroup and run only a
 * few threads, so 64 workgroups suffice; GPUs get one vec4 per thread up to the per-dimension limit.
 */
export function elementwiseVec4Grid(n4: number, isSoftware: boolean): [number, number, number] {
  const needed = Math.max(1, Math.ceil(n4 / VEC4_WORKGROUP));
  return [Math.min(needed, isSoftware ? 64 : 65535), 1, 1];
}

export const unaryForwardVec4 = defineKernel<{ op: UnaryOpName }>({
  name: 'unary_forward_vec4',
  variants: [{ op: 'sigmoid' }],
  bindings: [
    { name: 'x', access: 'read' },
    { name: 'y', access: 'rw' },
  ],
  params: [
    { name: 'n4', type: 'u32' },
    { name: 'a', type: 'f32' },
    { name: 'b', type: 'f32' },
  ],
  workgroupSize: VEC4_WORKGROUP,
  wgsl: ({ op }) => /* wgsl */ `
// unary_forward_vec4(${op}): y[i] = ${UNARY_OPS[op].wgsl} per component, x and y contiguous, as vec4s.
struct Params { n4: u32, a: f32, b: f32 }
@group(0) @binding(0) var<storage, read> x_in: array<vec4f>;
@group(0) @binding(1) var<storage, read_write> y_out: array<vec4f>;
@group(0) @binding(2) var<uniform> p: Params;
${POW_SIGNED}

fn f(x: f32, a: f32, b: f32) -> f32 { return ${UNARY_OPS[op].wgsl}; }

@compute @workgroup_size(${VEC4_WORKGROUP})
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) groups: vec3u) {
  let stride = groups.x * ${VEC4_WORKGROUP}u;
  for (var i = gid.x; i < p.n4; i += stride) {
    let x = x_in[i];
    y_out[i] = vec4f(f(x.x, p.a, p.b), f(x.y, p.a, p.b), f(x.z, p.a, p.b), f(x.w, p.a, p.b));
  }
}
`,
});

export const unaryBackwardVec4 = defineKernel<{ op: UnaryOpName }>({
  name: 'unary_backward_vec4',
  variants: [{ op: 'pow_scalar' }],
  bindings: [
    { name: 'x', access: 'read' },
    { name: 'y', access: 'read' },
    { name: 'dL_dy', access: 'read' },
    { name: 'dL_dx', access: 'rw' },
  ],
  params: [
    { name: 'n4', type: 'u32' },
    { name: 'a', type: 'f32' },
    { name: 'b', type: 'f32' },
  ],
  workgroupSize: VEC4_WORKGROUP,
  wgsl: ({ op }) => {
    const derivative = (UNARY_OPS[op] as UnaryOp).dwgsl;
    if (!derivative) throw new Error(`unary op ${op} has no derivative`);
    return /* wgsl */ `
// unary_backward_vec4(${op}): dL_dx[i] = dL_dy[i] * (${derivative}) per component, all contiguous, as vec4s.
struct Params { n4: u32, a: f32, b: f32 }
@group(0) @binding(0) var<storage, read> x_in: array<vec4f>;
@group(0) @binding(1) var<storage, read> y_in: array<vec4f>;
@group(0) @binding(2) var<storage, read> dL_dy: array<vec4f>;
@group(0) @binding(3) var<storage, read_write> dL_dx: array<vec4f>;
@group(0) @binding(4) var<uniform> p: Params;
${POW_SIGNED}

fn df(x: f32, y: f32, a: f32, b: f32) -> f32 { return ${derivative}; }

@compute @workgroup_size(${VEC4_WORKGROUP})
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) groups: vec3u) {
  let stride = groups.x * ${VEC4_WORKGROUP}u;
  for (var i = gid.x; i < p.n4; i += stride) {
    let x = x_in[i];
    let y = y_in[i];
    let d = vec4f(df(x.x, y.x, p.a, p.b), df(x.y, y.y, p.a, p.b), df(x.z, y.z, p.a, p.b), df(x.w, y.w, p.a, p.b));
    dL_dx[i] = dL_dy[i] * d;
  }
}
`;
  },
});

/** float64 reference of the forward on contiguous data. */
export function unaryReference(op: UnaryOpName, x: Float64Array, a = 0, b = 0): Float64Array {
  const f = UNARY_OPS[op].ref as UnaryOp['ref'];
  return x.map((v) => f(v, a, b));
}

/** float64 reference of the backward. */
export function unaryBackwardReference(op: UnaryOpName, x: Float64Array, dL_dy: Float64Array, a = 0, b = 0): Float64Array {
  const row = UNARY_OPS[op] as UnaryOp;
  if (!row.dref) throw new Error(`unary op ${op} has no derivative`);
  return x.map((v, i) => dL_dy[i] * row.dref!(v, row.ref(v, a, b), a, b));
}
