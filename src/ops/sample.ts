/** Differentiable bilinear gridSample (torch.nn.functional.grid_sample, 2-D, mode 'bilinear'). */
import { defineOp } from '../autograd/op.ts';
import { fixedPointScale, fixedPointToF32, type AtomicMode } from '../kernels/common/atomics.ts';
import { runtime } from '../kernels/runtime/runtime.ts';
import {
  gridSampleGradGridKernel,
  gridSampleGradInputKernel,
  gridSampleKernel,
  type PaddingMode,
} from '../kernels/sample/grid-sample.ts';
import { Tensor, shapeString } from '../tensor/tensor.ts';
import { scatterPolicy } from './indexing.ts';

export interface GridSampleOptions {
  /** torch's align_corners (default false): −1 and +1 are the centres (true) or outer edges (false) of the corner pixels. */
  alignCorners?: boolean;
  /** What is read outside the image: 0 ('zeros', default) or the nearest border pixel ('border'). */
  paddingMode?: PaddingMode;
  /**
   * How the input gradient's scatter adds (see src/kernels/common/atomics.ts): 'fixed-point' is deterministic
   * (resolution 2^-bits), 'float-cas' exact f32 in a scheduling-dependent order. Default: `scatterPolicy`.
   */
  atomics?: AtomicMode;
}

interface Config {
  alignCorners: boolean;
  padding: PaddingMode;
  atomics: AtomicMode;
  fixedPointBits: number;
}

function params(input: Tensor, grid: Tensor, cfg: Config): Record<string, number> {
  const [n, c, hIn, wIn] = input.shape;
  const [, hOut, wOut] = grid.shape;
  return { n, c, h_in: hIn, w_in: wIn, h_out: hOut, w_out: wOut, align_corners: cfg.alignCorners ? 1 : 0 };
}

const gridSampleOp = defineOp({
  name: 'gridSample',
  forward(ctx, cfg: Config, input: Tensor, grid: Tensor) {
    const [n, c] = input.shape;
    const [, hOut, wOut] = grid.shape;
    const out = Tensor.empty([n, c, hOut, wOut]);
    ctx.save(input, grid);
    if (out.size === 0) return out;
    const locations = n * hOut * wOut;
    runtime().dispatch(gridSampleKernel, { padding: cfg.padding }, [input.view, grid.view, out.view], params(input, grid, cfg), locations);
    return out;
  },
  backward(ctx, dL_dout) {
    const [input, grid] = ctx.saved;
    const cfg = ctx.attrs[0] as Config;
    const locations = grid.shape[0] * grid.shape[1] * grid.shape[2];
    const gradInput = (): Tensor => {
      const acc = Tensor.empty(input.shape);
      if (acc.size === 0) return acc;
      runtime().clear(acc.view);
      if (locations === 0) return acc;
      const scale = fixedPointScale(cfg.fixedPointBits);
      runtime().dispatch(
        gridSampleGradInputKernel,
        { padding: cfg.padding, mode: cfg.atomics },
        [grid.view, dL_dout.view, acc.view],
        { ...params(input, grid, cfg), fixed_scale: scale },
        locations,
      );
      if (cfg.atomics === 'fixed-point') {
        runtime().dispatch(fixedPointToF32, undefined, [acc.view], { n: acc.size, inv_scale: 1 / scale }, acc.size);
      }
      return acc;
    };
    const gradGrid = (): Tensor => {
      const dL_dgrid = Tensor.empty(grid.shape);
      if (dL_dgrid.size === 0) return dL_dgrid;
      runtime().dispatch(
        gridSampleGradGridKernel,
        { padding: cfg.padding },
        [input.view, grid.view, dL_dout.view, dL_dgrid.view],
        params(input, grid, cfg),
        locations,
      );
      return dL_dgrid;
    };
    return [gradInput, gradGrid];
  },
});

/**
 * Samples `input` [N, C, H, W] bilinearly at `grid` [N, H_out, W_out, 2] ((x, y) in [−1, 1]; x indexes W, y
 * indexes H) → [N, C, H_out, W_out], with torch's semantics and gradients w.r.t. both input and grid.
 */
export function gridSample(input: Tensor, grid: Tensor, opts: GridSampleOptions = {}): Tensor {
  for (const t of [input, grid]) if (t.dtype !== 'f32') throw new Error(`gridSample: expected f32 tensors, got ${t}`);
  if (input.rank !== 4 || input.shape[2] < 1 || input.shape[3] < 1) {
    throw new Error(`gridSample: input must be [N, C, H, W] with H, W ≥ 1, got ${shapeString(input.shape)}`);
  }
  if (grid.rank !== 4 || grid.shape[3] !== 2 || grid.shape[0] !== input.shape[0]) {
    throw new Error(
      `gridSample: grid must be [N, H_out, W_out, 2] with N = ${input.shape[0]} (input ${shapeString(input.shape)}), got ${shapeString(grid.shape)}`,
    );
  }
  const padding = opts.paddingMode ?? 'zeros';
  if (padding !== 'zeros' && padding !== 'border') {
    throw new Error(`gridSample: paddingMode must be 'zeros' or 'border', got '${String(padding)}'`);
  }
  const cfg: Config = {
    alignCorners: opts.alignCorners ?? false,
    padding,
    atomics: opts.atomics ?? scatterPolicy.mode,
    fixedPointBits: scatterPolicy.fixedPointBits,
  };
  return gridSampleOp(cfg, input, grid);
}
