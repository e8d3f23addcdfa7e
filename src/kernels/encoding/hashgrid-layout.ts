/**
 * The multiresolution hash grid's configuration and its per-level layout, shared by the WGSL kernels
 * (`hashgrid.ts`), the float64 reference (`hashgrid.ref.ts`) and the op (`src/ops/encoding.ts`).
 *
 * Geometry (the tiny-cuda-nn / torch-ngp convention):
 *   - Level l has `scale_l = base_resolution · b^l − 1`, where b is `perLevelScale`, or, when `maxResolution` is
 *     given instead, b = (maxResolution / baseResolution)^(1 / (L − 1)).
 *   - A point x ∈ [0, 1]^D (each coordinate clamped to [0, 1] first) sits at grid position
 *       p_d = x_d · scale_l + shift,   shift = 0 when `alignCorners`, 0.5 otherwise.
 *     `alignCorners: true` puts grid vertices exactly on x = 0 and x = 1 when scale_l is an integer (torch-ngp's
 *     align_corners, which ER-NeRF uses); `false` is tiny-cuda-nn's default (vertices offset by half a cell).
 *   - Vertices per axis: V_l = ceil(scale_l) + 1 (+1 more without aligned corners), so p ∈ [0, V_l − 1] always.
 *   - The cell is c_d = min(floor(p_d), V_l − 2) and the fraction f_d = p_d − c_d ∈ [0, 1]: a point on the upper
 *     face of the grid uses the last cell with f = 1. The output is the D-linear interpolation of the 2^D corner
 *     features. (Within a cell it is multilinear; across cell faces it is continuous but its derivative jumps; the
 *     input gradient takes the derivative of the cell chosen above, i.e. the one on the +side of an interior face.)
 *   - Level l owns `size_l` table entries starting at `offset_l`: size_l = V_l^D when that is ≤ 2^T (dense,
 *     index = c_0 + V·c_1 + V²·c_2), otherwise 2^T entries indexed by tiny-cuda-nn's coherent prime hash
 *     (c_0·1 ⊕ c_1·2654435761 ⊕ c_2·805459861, in wrapping u32 arithmetic) mod 2^T.
 * The table is one tensor [total_entries, F], the levels' blocks one after another. The encoding of a point is
 * the row [L·F], level-major (level l's F features at columns l·F … l·F + F − 1).
 */
import type { AtomicMode } from '../common/atomics.ts';

export interface HashGridConfig {
  /** Input dimensions: 3 for a volume grid, 2 for one plane of a tri-plane. */
  dims: 2 | 3;
  /** Features per level (F). */
  features: 1 | 2 | 4;
  /** Number of levels (L), 1 … 16. */
  levels: number;
  /** log2 of the largest table size of one level (T): a level with more than 2^T vertices is hashed. */
  log2TableSize: number;
  /** Resolution of the coarsest level (its scale is baseResolution − 1). */
  baseResolution: number;
  /** Growth factor b between levels; give this or `maxResolution`. */
  perLevelScale?: number;
  /** Resolution of the finest level; b is derived from it (ignored when perLevelScale is given). */
  maxResolution?: number;
  /** Vertices on x = 0 and x = 1 (torch-ngp align_corners) instead of tiny-cuda-nn's half-cell offset. Default false. */
  alignCorners?: boolean;
  /**
   * How the backward adds into the table gradient (see src/kernels/common/atomics.ts): 'float-cas' (exact f32
   * range, order-dependent rounding) or 'fixed-point' (bitwise deterministic, limited range). Default 'float-cas'.
   */
  atomics?: AtomicMode;
  /**
   * Fractional bits k of the fixed-point mode: each contribution w·dL/dy is added to an atomic<i32> cell as
   * round(w·dL/dy · 2^k) (clamped to ±(2^31 − 128)), so it is rounded to a multiple of 2^-k (error ≤ 2^-(k+1) per
   * add) and each cell's sum must stay within ±2^(31−k) or it wraps. A second pass (`fixed_point_to_f32`) turns
   * the cells in place into f32 sum · 2^-k. Default 24: resolution 6e-8, range ±128, sized for losses that are
   * means over rays (per-point gradients ≲ 1e-2); lower k for summed losses (k = 16: 1.5e-5, ±32768).
   */
  fixedPointBits?: number;
}

export const HASHGRID_MAX_LEVELS = 16;
export const HASHGRID_DEFAULT_FIXED_POINT_BITS = 24;

/** tiny-cuda-nn's primes for the coherent prime hash (coordinate d is multiplied by PRIMES[d]). */
export const HASH_PRIMES = [1, 2654435761, 805459861] as const;

/** ER-NeRF's tri-plane order XY, YZ, XZ: the columns of x [N, 3] each plane's 2-D grid reads. */
export const TRI_PLANE_AXES = [
  [0, 1],
  [1, 2],
  [0, 2],
] as const;

export interface HashGridLevel {
  /** First table entry of the level. */
  offset: number;
  /** Entries of the level: V^D (dense) or 2^T (hashed). */
  size: number;
  /** Vertices per axis V. */
  vertices: number;
  hashed: boolean;
  /** scale_l rounded to f32 (the GPU and the reference use this same value). */
  scale: number;
}

export interface HashGridLayout {
  levels: HashGridLevel[];
  /** Rows of the table tensor [totalEntries, F]. */
  totalEntries: number;
  /** 0.5 without aligned corners, 0 with. */
  shift: number;
  /** Output columns L·F. */
  outputDims: number;
}

/** Checks a config and names what is wrong. */
export function validateHashGridConfig(config: HashGridConfig, op = 'hashGrid'): void {
  const fail = (what: string): never => {
    throw new Error(`${op}: ${what} (config ${JSON.stringify(config)})`);
  };
  if (config.dims !== 2 && config.dims !== 3) fail(`dims must be 2 or 3, got ${config.dims}`);
  if (![1, 2, 4].includes(config.features)) fail(`features must be 1, 2 or 4, got ${config.features}`);
  if (!Number.isInteger(config.levels) || config.levels < 1 || config.levels > HASHGRID_MAX_LEVELS) {
    fail(`levels must be an integer in 1..${HASHGRID_MAX_LEVELS}, got ${config.levels}`);
  }
  if (!Number.isInteger(config.log2TableSize) || config.log2TableSize < 1 || config.log2TableSize > 24) {
    fail(`log2TableSize must be an integer in 1..24, got ${config.log2TableSize}`);
  }
  if (!(config.baseResolution >= 2)) fail(`baseResolution must be at least 2, got ${config.baseResolution}`);
  if (config.perLevelScale === undefined && config.maxResolution === undefined && config.levels > 1) {
    fail('give perLevelScale or maxResolution');
  }
  if (config.perLevelScale !== undefined && !(config.perLevelScale >= 1)) fail(`perLevelScale must be ≥ 1, got ${config.perLevelScale}`);
  if (config.perLevelScale === undefined && config.maxResolution !== undefined && !(config.maxResolution >= config.baseResolution)) {
    fail(`maxResolution ${config.maxResolution} is below baseResolution ${config.baseResolution}`);
  }
  const bits = config.fixedPointBits ?? HASHGRID_DEFAULT_FIXED_POINT_BITS;
  if (!Number.isInteger(bits) || bits < 0 || bits > 30) fail(`fixedPointBits must be an integer in 0..30, got ${bits}`);
}

/** The growth factor b between levels. */
export function perLevelScaleOf(config: HashGridConfig): number {
  if (config.perLevelScale !== undefined) return config.perLevelScale;
  if (config.levels === 1 || config.maxResolution === undefined) return 1;
  return Math.exp(Math.log(config.maxResolution / config.baseResolution) / (config.levels - 1));
}

/** Per-level offsets, sizes, vertices and scales (computed in float64, scales rounded to f32). */
export function hashGridLayout(config: HashGridConfig): HashGridLayout {
  validateHashGridConfig(config);
  const b = perLevelScaleOf(config);
  const align = config.alignCorners ?? false;
  const maxEntries = 2 ** config.log2TableSize;
  const levels: HashGridLevel[] = [];
  let offset = 0;
  for (let l = 0; l < config.levels; l++) {
    const scale = Math.fround(config.baseResolution * b ** l - 1);
    const vertices = Math.ceil(scale) + (align ? 1 : 2);
    if (vertices > 2 ** 24) throw new Error(`hashGrid: level ${l} has ${vertices} vertices per axis (at most 2^24)`);
    const denseEntries = vertices ** config.dims;
    const hashed = denseEntries > maxEntries;
    const size = hashed ? maxEntries : denseEntries;
    levels.push({ offset, size, vertices, hashed, scale });
    offset += size;
  }
  if (offset * config.features > 2 ** 31) throw new Error(`hashGrid: the table has ${offset} entries × ${config.features} features, too many`);
  return { levels, totalEntries: offset, shift: align ? 0 : 0.5, outputDims: config.levels * config.features };
}

/**
 * Entry index within a level of integer cell vertex `coords` (length D): dense row-major with x fastest, or the
 * prime hash mod 2^T. Written with JS integer arithmetic that matches WGSL's wrapping u32 multiply and xor.
 */
export function levelEntryIndex(level: HashGridLevel, coords: readonly number[]): number {
  if (!level.hashed) {
    let index = 0;
    let stride = 1;
    for (const c of coords) {
      index += c * stride;
      stride *= level.vertices;
    }
    return index;
  }
  let hash = 0;
  coords.forEach((c, d) => {
    hash = (hash ^ Math.imul(c, HASH_PRIMES[d])) >>> 0;
  });
  return hash % level.size;
}
