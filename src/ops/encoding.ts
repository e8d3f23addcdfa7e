/**
 * Differentiable multiresolution hash-grid encodings: `hashGrid` (one 2-D or 3-D grid, RAD-NeRF / instant-ngp)
 * and `triPlane` (three 2-D grids over the XY, YZ and XZ planes, ER-NeRF). Kernels: src/kernels/encoding/hashgrid.ts;
 * geometry, layout and config: src/kernels/encoding/hashgrid-layout.ts.
 *
 * Domain: x ∈ [0, 1]^D. Each coordinate is clamped to [0, 1] first, so a point outside encodes as the nearest point
 * of the unit box, and its dL/dx is 0 along each clamped coordinate (as the derivative of clamp). Map a scene box
 * [−bound, bound] into it with (x + bound) / (2·bound) (torch-ngp's gridencoder does the same).
 *
 * Backward: dL/dtable always when the table requires a gradient (scatter-add with the config's atomics mode);
 * dL/dx only when x requires a gradient (its own kernel, never dispatched otherwise).
 */
import { defineOp } from '../autograd/op.ts';
import { runtime } from '../kernels/runtime/runtime.ts';
import { fixedPointScale, fixedPointToF32 } from '../kernels/common/atomics.ts';
import {
  HASHGRID_DEFAULT_FIXED_POINT_BITS,
  TRI_PLANE_AXES,
  hashGridLayout,
  validateHashGridConfig,
  type HashGridConfig,
  type HashGridLayout,
} from '../kernels/encoding/hashgrid-layout.ts';
import {
  HASHGRID_WORKGROUP,
  LEVEL_INFO_WORDS,
  hashGridBackward,
  hashGridBackwardInput,
  hashGridForward,
  hashGridPackF16 as hashGridPackF16Kernel,
  type HashTablePrecision,
} from '../kernels/encoding/hashgrid.ts';
import { Tensor, shapeString } from '../tensor/tensor.ts';
import { tensor } from '../tensor/create.ts';
import { keep } from '../tensor/scope.ts';
import type { Rng } from '../tensor/random.ts';

export type { HashGridConfig, HashGridLayout } from '../kernels/encoding/hashgrid-layout.ts';
export { hashGridLayout } from '../kernels/encoding/hashgrid-layout.ts';

interface PreparedGrid {
  layout: HashGridLayout;
  /** The level table on the GPU (kept for the life of the process; one per distinct geometry). */
  levelInfo: Tensor;
}

const preparedGrids = new Map<string, PreparedGrid>();

function prepare(config: HashGridConfig, op: string): PreparedGrid {
  validateHashGridConfig(config, op);
  const key = JSON.stringify([config.dims, config.features, config.levels, config.log2TableSize, config.baseResolution, config.perLevelScale, config.maxResolution, config.alignCorners ?? false]);
  let prepared = preparedGrids.get(key);
  if (!prepared) {
    const layout = hashGridLayout(config);
    const words = new Uint32Array(layout.levels.length * LEVEL_INFO_WORDS);
    const asFloat = new Float32Array(words.buffer);
    layout.levels.forEach((level, l) => {
      const base = l * LEVEL_INFO_WORDS;
      words[base] = level.offset;
      words[base + 1] = level.size;
      words[base + 2] = level.vertices;
      words[base + 3] = level.hashed ? 1 : 0;
      asFloat[base + 4] = level.scale;
    });
    const levelInfo = keep(tensor(words, [words.length], 'u32'));
    levelInfo.name = `hashgrid level table ${key}`;
    prepared = { layout, levelInfo };
    preparedGrids.set(key, prepared);
  }
  return prepared;
}

/** Where a grid reads its input and writes its output within larger row-major buffers. */
interface Placement {
  /** Columns of x per row, and which columns are the grid's axes. */
  xStride: number;
  axes: readonly number[];
  /** Columns of y (and dL/dy) per row, and the first column of this grid's L·F block. */
  outStride: number;
  outOffset: number;
}

function axisParams(axes: readonly number[]): Record<string, number> {
  return { axis0: axes[0], axis1: axes[1], axis2: axes[2] ?? 0 };
}

/**
 * Workgroups for the (point, level) kernels: points along x (folded into z past `maxPerDimension` = 65535, the
 * WebGPU limit), levels along y. Exported for the test of the folded indexing.
 */
export function pointLevelGrid(points: number, levels: number, maxPerDimension = 65535): [number, number, number] {
  const groups = Math.ceil(points / HASHGRID_WORKGROUP);
  const z = Math.ceil(groups / maxPerDimension);
  return [Math.ceil(groups / z), levels, z];
}

function encodeInto(x: Tensor, table: Tensor, y: Tensor, config: HashGridConfig, grid: PreparedGrid, at: Placement, precision: HashTablePrecision = 'f32'): void {
  const points = x.shape[0];
  if (points === 0) return;
  runtime().dispatch(
    hashGridForward,
    { dims: config.dims, features: config.features, table: precision },
    [x.view, table.view, grid.levelInfo.view, y.view],
    { n: points, x_stride: at.xStride, ...axisParams(at.axes), out_stride: at.outStride, out_offset: at.outOffset, shift: grid.layout.shift },
    pointLevelGrid(points, config.levels),
  );
}

/** dL/dtable, a new tensor in the table's shape. */
function tableGrad(x: Tensor, dy: Tensor, tableShape: readonly number[], config: HashGridConfig, grid: PreparedGrid, at: Placement): Tensor {
  const rt = runtime();
  const grad_table = Tensor.empty(tableShape);
  rt.clear(grad_table.view);
  const points = x.shape[0];
  if (points === 0) return grad_table;
  const atomics = config.atomics ?? 'float-cas';
  const bits = config.fixedPointBits ?? HASHGRID_DEFAULT_FIXED_POINT_BITS;
  rt.dispatch(
    hashGridBackward,
    { dims: config.dims, features: config.features, atomics },
    [x.view, grid.levelInfo.view, dy.view, grad_table.view],
    {
      n: points,
      x_stride: at.xStride,
      ...axisParams(at.axes),
      dy_stride: at.outStride,
      dy_offset: at.outOffset,
      shift: grid.layout.shift,
      fixed_scale: fixedPointScale(bits),
    },
    pointLevelGrid(points, config.levels),
  );
  if (atomics === 'fixed-point') {
    rt.dispatch(fixedPointToF32, undefined, [grad_table.view], { n: grad_table.size, inv_scale: 2 ** -bits }, grad_table.size);
  }
  return grad_table;
}

/** Writes (accumulate = false) or adds (true) this grid's dL/dx into dx's axis columns. */
function inputGradInto(x: Tensor, table: Tensor, dy: Tensor, dx: Tensor, config: HashGridConfig, grid: PreparedGrid, at: Placement, accumulate: boolean): void {
  const points = x.shape[0];
  if (points === 0) return;
  runtime().dispatch(
    hashGridBackwardInput,
    { dims: config.dims, features: config.features },
    [x.view, table.view, grid.levelInfo.view, dy.view, dx.view],
    {
      n: points,
      x_stride: at.xStride,
      ...axisParams(at.axes),
      dy_stride: at.outStride,
      dy_offset: at.outOffset,
      levels: config.levels,
      shift: grid.layout.shift,
      accumulate: accumulate ? 1 : 0,
    },
    points,
  );
}

function checkInputs(op: string, x: Tensor | null, xColumns: number, tables: readonly Tensor[], config: HashGridConfig, layout: HashGridLayout): void {
  if (x && (x.dtype !== 'f32' || x.rank !== 2 || x.shape[1] !== xColumns)) {
    throw new Error(`${op}: x must be an f32 tensor [N, ${xColumns}] of points in [0, 1]^${xColumns}, got ${x}`);
  }
  for (const table of tables) {
    if (table.dtype !== 'f32' || table.rank !== 2 || table.shape[0] !== layout.totalEntries || table.shape[1] !== config.features) {
      throw new Error(
        `${op}: the table must be f32 [${layout.totalEntries}, ${config.features}] for this config ` +
          `(${config.levels} levels, ${config.features} features, 2^${config.log2TableSize} entries max per level), got ${table.dtype} ${shapeString(table.shape)}`,
      );
    }
  }
}

/**
 * The hash-grid encoding of points x [N, D] (in [0, 1]^D, clamped) with a table [totalEntries, F]
 * (`hashGridLayout(config).totalEntries`): returns [N, L·F], level-major per row.
 */
export const hashGrid = defineOp({
  name: 'hashGrid',
  forward(ctx, x: Tensor, table: Tensor, config: HashGridConfig) {
    const grid = prepare(config, 'hashGrid');
    checkInputs('hashGrid', x, config.dims, [table], config, grid.layout);
    const width = grid.layout.outputDims;
    const y = Tensor.empty([x.shape[0], width]);
    const at: Placement = { xStride: config.dims, axes: [0, 1, 2].slice(0, config.dims), outStride: width, outOffset: 0 };
    encodeInto(x, table, y, config, grid, at);
    ctx.save(x, table);
    return y;
  },
  backward(ctx, dy) {
    const [x, table] = ctx.saved;
    const config = ctx.attrs[0] as HashGridConfig;
    const grid = prepare(config, 'hashGrid');
    const at: Placement = { xStride: config.dims, axes: [0, 1, 2].slice(0, config.dims), outStride: grid.layout.outputDims, outOffset: 0 };
    return [
      () => {
        const dx = Tensor.empty(x.shape);
        inputGradInto(x, table, dy, dx, config, grid, at, false);
        return dx;
      },
      () => tableGrad(x, dy, table.shape, config, grid, at),
    ];
  },
});

/**
 * The f16 copy of a hash-grid table [totalEntries, F] (F = 2 or 4) for `hashGridF16`: u32 [totalEntries, F/2],
 * two features per u32 (pack2x16float; values clamped to ±65504, rounded to an f16 neighbour). A snapshot: make
 * a new one after the table changes. Why: src/kernels/encoding/hashgrid.ts.
 */
export const hashGridPackF16 = defineOp({
  name: 'hashGridPackF16',
  // No backward: a table that requires a gradient (with recording on) is an error, raised by defineOp.
  forward(_ctx, table: Tensor, config: HashGridConfig) {
    const grid = prepare(config, 'hashGridPackF16');
    checkInputs('hashGridPackF16', null, config.dims, [table], config, grid.layout);
    if (config.features === 1) throw new Error('hashGridPackF16: an f16 table needs 2 or 4 features per level (with 1 it saves no loads); got 1');
    const packed = Tensor.empty([table.shape[0], config.features / 2], 'u32');
    const rows = table.shape[0];
    runtime().dispatch(hashGridPackF16Kernel, { features: config.features }, [table.view, packed.view], { rows }, rows);
    return packed;
  },
});

/**
 * `hashGrid`'s forward reading the f16 copy of its table (`hashGridPackF16`): for rendering, with no gradient.
 * The result is the f32 encoding of the f16-rounded table (relative error of a feature ≤ 2^-11).
 */
export const hashGridF16 = defineOp({
  name: 'hashGridF16',
  forward(_ctx, x: Tensor, packedTable: Tensor, config: HashGridConfig) {
    const grid = prepare(config, 'hashGridF16');
    checkInputs('hashGridF16', x, config.dims, [], config, grid.layout);
    if (config.features === 1) throw new Error('hashGridF16: an f16 table needs 2 or 4 features per level; got 1 (read the f32 table with hashGrid)');
    const { totalEntries } = grid.layout;
    if (packedTable.dtype !== 'u32' || packedTable.rank !== 2 || packedTable.shape[0] !== totalEntries || packedTable.shape[1] * 2 !== config.features) {
      throw new Error(`hashGridF16: the table must be hashGridPackF16's u32 [${totalEntries}, ${config.features / 2}] for this config, got ${packedTable.dtype} ${shapeString(packedTable.shape)}`);
    }
    const width = grid.layout.outputDims;
    const y = Tensor.empty([x.shape[0], width]);
    encodeInto(x, packedTable, y, config, grid, { xStride: config.dims, axes: [0, 1, 2].slice(0, config.dims), outStride: width, outOffset: 0 }, 'f16');
    return y;
  },
});

/**
 * ER-NeRF's tri-plane encoding of x [N, 3] (in [0, 1]^3, clamped): three 2-D hash grids (config.dims = 2) over the
 * XY, YZ and XZ planes, each with its own table, concatenated per row: [N, 3·L·F] = [XY | YZ | XZ]. Each grid
 * writes straight into its slice of the output (no concat pass).
 */
export const triPlane = defineOp({
  name: 'triPlane',
  forward(ctx, x: Tensor, tableXY: Tensor, tableYZ: Tensor, tableXZ: Tensor, config: HashGridConfig) {
    if (config.dims !== 2) throw new Error(`triPlane: config.dims must be 2 (each plane is a 2-D grid), got ${config.dims}`);
    const grid = prepare(config, 'triPlane');
    const tables = [tableXY, tableYZ, tableXZ];
    checkInputs('triPlane', x, 3, tables, config, grid.layout);
    const width = grid.layout.outputDims;
    const y = Tensor.empty([x.shape[0], 3 * width]);
    tables.forEach((table, k) => {
      encodeInto(x, table, y, config, grid, { xStride: 3, axes: TRI_PLANE_AXES[k], outStride: 3 * width, outOffset: k * width });
    });
    ctx.save(x, ...tables);
    return y;
  },
  backward(ctx, dy) {
    const [x, ...tables] = ctx.saved;
    const config = ctx.attrs[0] as HashGridConfig;
    const grid = prepare(config, 'triPlane');
    const width = grid.layout.outputDims;
    const placement = (k: number): Placement => ({ xStride: 3, axes: TRI_PLANE_AXES[k], outStride: 3 * width, outOffset: k * width });
    return [
      () => {
        // Each plane adds into two of the three columns: start from zeros.
        const dx = Tensor.empty(x.shape);
        runtime().clear(dx.view);
        tables.forEach((table, k) => inputGradInto(x, table, dy, dx, config, grid, placement(k), true));
        return dx;
      },
      ...tables.map((table, k) => () => tableGrad(x, dy, table.shape, config, grid, placement(k))),
    ];
  },
});

/**
 * A new table for `config`, uniform in [−scale, scale] (instant-ngp and torch-ngp initialise with 1e-4), seeded.
 * The caller owns it (mark it `requiresGrad` and hand it to the optimizer).
 */
export function hashGridTable(config: HashGridConfig, rng: Rng, scale = 1e-4): Tensor {
  const { totalEntries } = hashGridLayout(config);
  const values = new Float32Array(totalEntries * config.features);
  for (let i = 0; i < values.length; i++) values[i] = rng.range(-scale, scale);
  return tensor(values, [totalEntries, config.features]);
}
