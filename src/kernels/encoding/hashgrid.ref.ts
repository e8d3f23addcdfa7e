/**
 * float64 reference of the multiresolution hash grid (geometry and layout in `hashgrid-layout.ts`):
 *
 *   y[n, l·F + f] = Σ_corners w_c(frac) · table[offset_l + index_l(cell + c), f]
 *   w_c = Π_d (c_d ? frac_d : 1 − frac_d)
 *
 * and its gradients: dL/dtable by scattering w_c · dL/dy into the corner entries, and dL/dx from
 * ∂y/∂x_d = scale_l · Σ_c (∂w_c/∂frac_d) · table[…], zero for a coordinate clamped from outside [0, 1].
 * Written point by point, level by level, corner by corner, to read like the math (no GPU structure).
 */
import { TRI_PLANE_AXES, hashGridLayout, levelEntryIndex, type HashGridConfig, type HashGridLevel } from './hashgrid-layout.ts';

interface CellPosition {
  cell: number[];
  frac: number[];
  /** 1 where the coordinate lies in [0, 1] (the clamp passes its derivative), else 0. */
  inside: number[];
}

function locate(point: readonly number[], level: HashGridLevel, shift: number): CellPosition {
  const cell: number[] = [];
  const frac: number[] = [];
  const inside: number[] = [];
  for (const x of point) {
    const clamped = Math.min(Math.max(x, 0), 1);
    const p = clamped * level.scale + shift;
    const c = Math.min(Math.floor(p), level.vertices - 2);
    cell.push(c);
    frac.push(p - c);
    inside.push(x >= 0 && x <= 1 ? 1 : 0);
  }
  return { cell, frac, inside };
}

/** Corner bit d of corner c (0 → the lower vertex along axis d, 1 → the upper). */
const bit = (corner: number, d: number): number => (corner >> d) & 1;

function cornerWeight(corner: number, frac: readonly number[]): number {
  let w = 1;
  frac.forEach((f, d) => {
    w *= bit(corner, d) ? f : 1 - f;
  });
  return w;
}

/** ∂w_c/∂frac_d. */
function cornerWeightDerivative(corner: number, frac: readonly number[], d: number): number {
  let w = bit(corner, d) ? 1 : -1;
  frac.forEach((f, e) => {
    if (e !== d) w *= bit(corner, e) ? f : 1 - f;
  });
  return w;
}

function cornerEntry(level: HashGridLevel, cell: readonly number[], corner: number): number {
  return level.offset + levelEntryIndex(level, cell.map((c, d) => c + bit(corner, d)));
}

/** Point n's coordinates: the `axes` columns of row n of x (x has `xStride` columns). */
function pointOf(x: Float64Array, n: number, xStride: number, axes: readonly number[]): number[] {
  return axes.map((a) => x[n * xStride + a]);
}

export interface HashGridRefOptions {
  /** Columns of x per row (default: config.dims). */
  xStride?: number;
  /** Which columns of x are the grid's axes (default 0 … D−1). */
  axes?: readonly number[];
}

/** Largest finite f16. */
const F16_MAX = 65504;

/**
 * The f16 values next to v (clamped to ±65504 first, as the packing kernel does): [largest ≤ v, smallest ≥ v] and
 * the nearest (ties to the even significand). f16 has 10 fraction bits and exponents −14 … 15; below 2^-14 the
 * spacing stays 2^-24 (subnormals).
 */
export function f16Neighbours(v: number): { below: number; above: number; nearest: number } {
  const clamped = Math.min(Math.max(v, -F16_MAX), F16_MAX);
  const a = Math.abs(clamped);
  if (a === 0) return { below: clamped, above: clamped, nearest: clamped };
  let e = Math.max(Math.floor(Math.log2(a)), -14);
  if (e > -14 && 2 ** e > a) e--; // log2 rounding near powers of two
  if (2 ** (e + 1) <= a) e++;
  const spacing = 2 ** (e - 10);
  const q = a / spacing; // exact: a power-of-two division
  const down = Math.floor(q);
  const up = Math.ceil(q);
  const even = q - down === 0.5 ? (down % 2 === 0 ? down : up) : Math.round(q);
  const sign = Math.sign(clamped);
  const [lo, hi] = sign > 0 ? [down, up] : [up, down];
  return { below: sign * lo * spacing, above: sign * hi * spacing, nearest: sign * even * spacing };
}

/** v rounded to the nearest f16 (ties to even), after clamping to ±65504. */
export function roundToF16(v: number): number {
  return f16Neighbours(v).nearest;
}

/** The value of an IEEE binary16 bit pattern (the low 16 bits of `bits`). */
export function decodeF16(bits: number): number {
  const sign = bits & 0x8000 ? -1 : 1;
  const exponent = (bits >> 10) & 0x1f;
  const fraction = bits & 0x3ff;
  if (exponent === 0) return sign * fraction * 2 ** -24;
  if (exponent === 31) return fraction === 0 ? sign * Infinity : NaN;
  return sign * (1 + fraction / 1024) * 2 ** (exponent - 15);
}

/** y [N, L·F] for x [N, xStride] and table [totalEntries, F]. */
export function hashGridReference(x: Float64Array, table: Float64Array, config: HashGridConfig, options: HashGridRefOptions = {}): Float64Array {
  const { levels, shift, outputDims } = hashGridLayout(config);
  const D = config.dims;
  const F = config.features;
  const xStride = options.xStride ?? D;
  const axes = options.axes ?? Array.from({ length: D }, (_, d) => d);
  const N = x.length / xStride;
  const y = new Float64Array(N * outputDims);
  for (let n = 0; n < N; n++) {
    const point = pointOf(x, n, xStride, axes);
    levels.forEach((level, l) => {
      const { cell, frac } = locate(point, level, shift);
      for (let corner = 0; corner < 2 ** D; corner++) {
        const w = cornerWeight(corner, frac);
        const entry = cornerEntry(level, cell, corner);
        for (let f = 0; f < F; f++) y[n * outputDims + l * F + f] += w * table[entry * F + f];
      }
    });
  }
  return y;
}

/** dL/dtable [totalEntries, F] for dL/dy [N, L·F]. */
export function hashGridTableGradReference(x: Float64Array, dL_dy: Float64Array, config: HashGridConfig, options: HashGridRefOptions = {}): Float64Array {
  const { levels, shift, outputDims, totalEntries } = hashGridLayout(config);
  const D = config.dims;
  const F = config.features;
  const xStride = options.xStride ?? D;
  const axes = options.axes ?? Array.from({ length: D }, (_, d) => d);
  const N = x.length / xStride;
  const grad_table = new Float64Array(totalEntries * F);
  for (let n = 0; n < N; n++) {
    const point = pointOf(x, n, xStride, axes);
    levels.forEach((level, l) => {
      const { cell, frac } = locate(point, level, shift);
      for (let corner = 0; corner < 2 ** D; corner++) {
        const w = cornerWeight(corner, frac);
        const entry = cornerEntry(level, cell, corner);
        for (let f = 0; f < F; f++) grad_table[entry * F + f] += w * dL_dy[n * outputDims + l * F + f];
      }
    });
  }
  return grad_table;
}

/** dL/dx [N, xStride] for dL/dy [N, L·F] (columns of x that are not axes get 0). */
export function hashGridInputGradReference(
  x: Float64Array,
  table: Float64Array,
  dL_dy: Float64Array,
  config: HashGridConfig,
  options: HashGridRefOptions = {},
): Float64Array {
  const { levels, shift, outputDims } = hashGridLayout(config);
  const D = config.dims;
  const F = config.features;
  const xStride = options.xStride ?? D;
  const axes = options.axes ?? Array.from({ length: D }, (_, d) => d);
  const N = x.length / xStride;
  const grad_x = new Float64Array(x.length);
  for (let n = 0; n < N; n++) {
    const point = pointOf(x, n, xStride, axes);
    levels.forEach((level, l) => {
      const { cell, frac, inside } = locate(point, level, shift);
      for (let d = 0; d < D; d++) {
        let dL_dfrac = 0;
        for (let corner = 0; corner < 2 ** D; corner++) {
          const dw = cornerWeightDerivative(corner, frac, d);
          const entry = cornerEntry(level, cell, corner);
          for (let f = 0; f < F; f++) dL_dfrac += dw * table[entry * F + f] * dL_dy[n * outputDims + l * F + f];
        }
        grad_x[n * xStride + axes[d]] += dL_dfrac * level.scale * inside[d];
      }
    });
  }
  return grad_x;
}

/** Tri-plane encoding [N, 3·L·F] = concat(XY, YZ, XZ) of three 2-D grids over x [N, 3]. */
export function triPlaneReference(x: Float64Array, tables: readonly Float64Array[], config: HashGridConfig): Float64Array {
  const N = x.length / 3;
  const width = config.levels * config.features;
  const y = new Float64Array(N * 3 * width);
  TRI_PLANE_AXES.forEach((axes, k) => {
    const plane = hashGridReference(x, tables[k], config, { xStride: 3, axes });
    for (let n = 0; n < N; n++) for (let j = 0; j < width; j++) y[n * 3 * width + k * width + j] = plane[n * width + j];
  });
  return y;
}

/** Gradients of the tri-plane: [dL/dx, dL/dtable_xy, dL/dtable_yz, dL/dtable_xz]. */
export function triPlaneGradReference(x: Float64Array, tables: readonly Float64Array[], dL_dy: Float64Array, config: HashGridConfig): Float64Array[] {
  const N = x.length / 3;
  const width = config.levels * config.features;
  const grad_x = new Float64Array(x.length);
  const grad_tables = TRI_PLANE_AXES.map((axes, k) => {
    const dL_dplane = new Float64Array(N * width);
    for (let n = 0; n < N; n++) for (let j = 0; j < width; j++) dL_dplane[n * width + j] = dL_dy[n * 3 * width + k * width + j];
    const options = { xStride: 3, axes };
    const gx = hashGridInputGradReference(x, tables[k], dL_dplane, config, options);
    for (let i = 0; i < gx.length; i++) grad_x[i] += gx[i];
    return hashGridTableGradReference(x, dL_dplane, config, options);
  });
  return [grad_x, ...grad_tables];
}
