/**
 * NeRF building blocks as ops: frequency and spherical-harmonics encodings (differentiable), camera rays,
 * stratified and importance sampling, and per-sample weights (data: no gradient).
 */
import { defineOp } from '../autograd/op.ts';
import { runtime } from '../kernels/runtime/runtime.ts';
import { frequencyEncodeBackward, frequencyEncodeForward } from '../kernels/encoding/frequency.ts';
import { shEncodeBackward, shEncodeForward } from '../kernels/encoding/spherical-harmonics.ts';
import { generateRays as generateRaysKernel, type Intrinsics } from '../kernels/render/rays.ts';
import { importanceSamples as importanceKernel, stratifiedSamples as stratifiedKernel } from '../kernels/render/sampling.ts';
import { compositeWeights } from '../kernels/render/composite.ts';
import type { DensityActivation } from '../kernels/render/composite.ref.ts';
import { Tensor, shapeString } from '../tensor/tensor.ts';

export type { Intrinsics } from '../kernels/render/rays.ts';

const frequencyEncodeOp = defineOp({
  name: 'frequency_encode',
  forward(ctx, x: Tensor, frequencies: number) {
    if (x.rank !== 2) throw new Error(`frequencyEncode: x must be [N, D], got ${shapeString(x.shape)}`);
    const [points, dims] = x.shape;
    const y = Tensor.empty([points, dims * (1 + 2 * frequencies)]);
    if (y.size > 0) runtime().dispatch(frequencyEncodeForward, undefined, [x.view, y.view], { points, dims, frequencies }, y.size);
    ctx.save(x);
    return y;
  },
  backward(ctx, dL_dy) {
    const [x] = ctx.saved;
    const frequencies = ctx.attrs[0] as number;
    return [
      () => {
        const dL_dx = Tensor.empty(x.shape);
        runtime().dispatch(frequencyEncodeBackward, undefined, [x.view, dL_dy.view, dL_dx.view], { points: x.shape[0], dims: x.shape[1], frequencies }, x.size);
        return dL_dx;
      },
    ];
  },
});

/** γ(x) = [x, sin(2^k x), cos(2^k x) for k < frequencies] per point: [N, D] → [N, D(1 + 2·frequencies)]. */
export const frequencyEncode = (x: Tensor, frequencies: number): Tensor => frequencyEncodeOp(x, frequencies);

const shEncodeOp = defineOp({
  name: 'sh_encode',
  forward(ctx, dirs: Tensor, degree: number) {
    if (dirs.rank !== 2 || dirs.shape[1] !== 3) throw new Error(`shEncode: directions must be [N, 3], got ${shapeString(dirs.shape)}`);
    if (!Number.isInteger(degree) || degree < 1 || degree > 4) throw new Error(`shEncode: degree must be 1..4, got ${degree}`);
    const points = dirs.shape[0];
    const y = Tensor.empty([points, degree * degree]);
    if (points > 0) runtime().dispatch(shEncodeForward, undefined, [dirs.view, y.view], { points, degree }, points);
    ctx.save(dirs);
    return y;
  },
  backward(ctx, dL_dy) {
    const [dirs] = ctx.saved;
    const degree = ctx.attrs[0] as number;
    return [
      () => {
        const dL_ddir = Tensor.empty(dirs.shape);
        runtime().dispatch(shEncodeBackward, undefined, [dirs.view, dL_dy.view, dL_ddir.view], { points: dirs.shape[0], degree }, dirs.shape[0]);
        return dL_ddir;
      },
    ];
  },
});

/** Real spherical harmonics up to `degree` (≤ 4) of unit directions: [N, 3] → [N, degree²]. */
export const shEncode = (dirs: Tensor, degree = 4): Tensor => shEncodeOp(dirs, degree);

export interface Rays {
  /** [R, 3] */
  origin: Tensor;
  /** [R, 3], not normalised (z = −1 in camera space) */
  direction: Tensor;
  /** [R] */
  dirNorm: Tensor;
}

/**
 * Rays through pixels (flat indices v·width + u, u32 [R]) of frames (u32 [R] into c2w [F, 3, 4] or [F, 4, 4]).
 * See src/kernels/render/rays.ts for the convention.
 */
export function generateRays(pixel: Tensor, frame: Tensor, c2w: Tensor, width: number, k: Intrinsics, pixelOffset = 0.5): Rays {
  if (pixel.dtype !== 'u32' || frame.dtype !== 'u32') throw new Error('generateRays: pixel and frame indices must be u32 tensors');
  if (pixel.size !== frame.size) throw new Error(`generateRays: ${pixel.size} pixels but ${frame.size} frame indices`);
  if (c2w.rank !== 3 || c2w.shape[1] !== 3 || c2w.shape[2] !== 4) {
    throw new Error(`generateRays: c2w must be [F, 3, 4] (drop the last row of 4×4 matrices), got ${shapeString(c2w.shape)}`);
  }
  const rays = pixel.size;
  const origin = Tensor.empty([rays, 3]);
  const direction = Tensor.empty([rays, 3]);
  const dirNorm = Tensor.empty([rays]);
  if (rays > 0) {
    runtime().dispatch(
      generateRaysKernel,
      undefined,
      [pixel.view, frame.view, c2w.view, origin.view, direction.view, dirNorm.view],
      { rays, width, fx: k.fx, fy: k.fy, cx: k.cx, cy: k.cy, pixel_offset: pixelOffset },
      rays,
    );
  }
  return { origin, direction, dirNorm };
}

export interface SamplingOptions {
  /** Seed of the counter-based random stream (change it every step). */
  seed?: number;
  /** Jitter samples randomly (training) or take bin centres (evaluation). */
  perturb?: boolean;
}

/** Stratified depths z [R, S] between near [R] and far [R]. */
export function stratifiedSamples(near: Tensor, far: Tensor, samples: number, opts: SamplingOptions = {}): Tensor {
  if (near.size !== far.size) throw new Error(`stratifiedSamples: ${near.size} near values but ${far.size} far values`);
  const rays = near.size;
  const z = Tensor.empty([rays, samples]);
  if (z.size > 0) {
    runtime().dispatch(stratifiedKernel, undefined, [near.view, far.view, z.view], { rays, samples, seed: opts.seed ?? 0, perturb: opts.perturb ? 1 : 0 }, z.size);
  }
  return z;
}

/** Rendering weights w = T·α per sample [R, S] (no gradient; they steer importance sampling). */
export function sampleWeights(sigmaRaw: Tensor, z: Tensor, dirNorm: Tensor, activation: DensityActivation = 'relu'): Tensor {
  const [rays, samples] = sigmaRaw.shape;
  const weights = Tensor.empty([rays, samples]);
  if (weights.size > 0) runtime().dispatch(compositeWeights, { activation }, [sigmaRaw.view, z.view, dirNorm.view, weights.view], { rays, samples }, rays);
  return weights;
}

/** Coarse depths [R, S] merged in order with `fine` depths drawn from the coarse weights: [R, S + fine]. */
export function importanceSamples(zCoarse: Tensor, weights: Tensor, fine: number, opts: SamplingOptions = {}): Tensor {
  if (zCoarse.rank !== 2 || zCoarse.shape[1] < 3) throw new Error(`importanceSamples: need [R, S ≥ 3] coarse depths, got ${shapeString(zCoarse.shape)}`);
  const [rays, coarse] = zCoarse.shape;
  const zAll = Tensor.empty([rays, coarse + fine]);
  if (rays > 0) {
    runtime().dispatch(importanceKernel, undefined, [zCoarse.view, weights.view, zAll.view], { rays, coarse, fine, seed: opts.seed ?? 0, perturb: opts.perturb ? 1 : 0 }, rays);
  }
  return zAll;
}
