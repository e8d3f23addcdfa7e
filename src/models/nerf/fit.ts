/**
 * Fitting a radiance field to posed images: ray batches, stratified (+ importance) sampling, the field, the fused
 * render-and-loss kernel, Adam — one queued training step with no readback — and evaluation (PSNR) by rendering
 * whole views in chunks.
 */
import { Tensor } from '../../tensor/tensor.ts';
import { tensor, full } from '../../tensor/create.ts';
import { Rng } from '../../tensor/random.ts';
import { keep, scope } from '../../tensor/scope.ts';
import { backward, noGrad } from '../../autograd/tape.ts';
import { add, div, mul } from '../../ops/elementwise.ts';
import { mean } from '../../ops/reduce.ts';
import { expand, reshape } from '../../ops/shape.ts';
import { indexSelect, narrow } from '../../ops/indexing.ts';
import { generateRays, importanceSamples, sampleWeights, stratifiedSamples, type Rays } from '../../ops/nerf.ts';
import { volumeRender, volumeRenderLoss } from '../../ops/render.ts';
import type { DensityActivation } from '../../kernels/render/composite.ref.ts';
import type { Module } from '../module.ts';
import type { FieldOutput } from './field.ts';
import type { View } from './scene.ts';

export type RadianceField = Module<[Tensor, Tensor], FieldOutput>;

export interface FitOptions {
  raysPerStep: number;
  coarseSamples: number;
  /** Importance samples per ray for the fine field (0: coarse only). */
  fineSamples: number;
  near: number;
  far: number;
  activation: DensityActivation;
  /** Background colour composited by the last sample (the scene's). */
  background: [number, number, number];
  seed: number;
}

/** Posed views with their images, uploaded once. */
export class PosedImages {
  readonly c2w: Tensor;
  /** [views · height · width, 3] */
  readonly pixels: Tensor;
  readonly width: number;
  readonly height: number;

  constructor(readonly views: View[], images: Float64Array[]) {
    const { width, height } = views[0];
    for (const v of views) {
      if (v.width !== width || v.height !== height) throw new Error('PosedImages: all views must share one size');
      const k = v.intrinsics;
      const k0 = views[0].intrinsics;
      if (k.fx !== k0.fx || k.fy !== k0.fy || k.cx !== k0.cx || k.cy !== k0.cy) throw new Error('PosedImages: all views must share intrinsics');
    }
    this.width = width;
    this.height = height;
    const c2w = new Float32Array(views.length * 12);
    views.forEach((v, i) => c2w.set(v.c2w, i * 12));
    this.c2w = keep(tensor(c2w, [views.length, 3, 4]));
    const all = new Float32Array(views.length * width * height * 3);
    images.forEach((img, i) => all.set(img, i * width * height * 3));
    this.pixels = keep(tensor(all, [views.length * width * height, 3]));
  }

  dispose(): void {
    this.c2w.dispose();
    this.pixels.dispose();
  }
}

/** Sample points [R·S, 3] and unit view directions [R·S, 3] along rays at depths z [R, S]. */
export function samplePoints(rays: Rays, z: Tensor): { points: Tensor; dirs: Tensor } {
  const [R, S] = z.shape;
  const origin = reshape(rays.origin, [R, 1, 3]);
  const direction = reshape(rays.direction, [R, 1, 3]);
  const points = reshape(add(origin, mul(reshape(z, [R, S, 1]), direction)), [R * S, 3]);
  const unit = div(direction, reshape(rays.dirNorm, [R, 1, 1]));
  const dirs = reshape(expand(unit, [R, S, 3]), [R * S, 3]);
  return { points, dirs };
}

export class NerfFitter {
  private readonly rng: Rng;
  private readonly background: Tensor;

  constructor(
    readonly coarse: RadianceField,
    readonly fine: RadianceField | null,
    readonly data: PosedImages,
    readonly options: FitOptions,
  ) {
    if (options.fineSamples > 0 && !fine) throw new Error('NerfFitter: fineSamples > 0 needs a fine field');
    this.rng = new Rng(options.seed);
    this.background = keep(tensor(options.background, [1, 3]));
  }

  private fieldOutput(field: RadianceField, rays: Rays, z: Tensor): { sigmaRaw: Tensor; rgbRaw: Tensor } {
    const [R, S] = z.shape;
    const { points, dirs } = samplePoints(rays, z);
    const out = field.forward(points, dirs);
    return { sigmaRaw: reshape(out.sigmaRaw, [R, S]), rgbRaw: reshape(out.rgbRaw, [R, S, 3]) };
  }

  /**
   * Queues one training step on a random batch of pixels from all training views and returns the (scalar) loss
   * tensor. The caller runs the optimizer inside the same scope.
   */
  lossForStep(step: number): Tensor {
    const o = this.options;
    const { width, height, views } = { width: this.data.width, height: this.data.height, views: this.data.views };
    const R = o.raysPerStep;
    const pixel = new Uint32Array(R);
    const frame = new Uint32Array(R);
    const flat = new Int32Array(R);
    for (let r = 0; r < R; r++) {
      frame[r] = this.rng.int(views.length);
      pixel[r] = this.rng.int(width * height);
      flat[r] = frame[r] * width * height + pixel[r];
    }
    const rays = generateRays(tensor(pixel, [R], 'u32'), tensor(frame, [R], 'u32'), this.data.c2w, width, views[0].intrinsics);
    const target = indexSelect(this.data.pixels, 0, tensor(flat, [R], 'i32'));
    const background = expand(this.background, [R, 3]);
    const near = full([R], o.near);
    const far = full([R], o.far);
    const zCoarse = stratifiedSamples(near, far, o.coarseSamples, { seed: step * 2 + 1, perturb: true });
    const coarse = this.fieldOutput(this.coarse, rays, zCoarse);
    const renderOptions = { activation: o.activation, background };
    let loss = mean(volumeRenderLoss(coarse.sigmaRaw, coarse.rgbRaw, zCoarse, rays.dirNorm, target, renderOptions));
    if (this.fine && o.fineSamples > 0) {
      const weights = sampleWeights(coarse.sigmaRaw, zCoarse, rays.dirNorm, o.activation);
      const zAll = importanceSamples(zCoarse, weights, o.fineSamples, { seed: step * 2 + 2, perturb: true });
      const fine = this.fieldOutput(this.fine, rays, zAll);
      loss = add(loss, mean(volumeRenderLoss(fine.sigmaRaw, fine.rgbRaw, zAll, rays.dirNorm, target, renderOptions)));
    }
    return loss;
  }

  /** Convenience: one step with an optimizer; returns the loss (read it later, or not at all). */
  trainStep(step: number, optimizer: { step(): void; zeroGrad(): void }): Tensor {
    return scope(() => {
      const loss = this.lossForStep(step);
      backward(loss);
      optimizer.step();
      optimizer.zeroGrad();
      return loss;
    });
  }

  /** Renders a view [height·width·3] with the fine field when there is one (evaluation: no jitter). */
  async renderView(view: View, chunk = 4096): Promise<Float32Array> {
    const { width, height } = view;
    const o = this.options;
    const image = new Float32Array(width * height * 3);
    const c2w = tensor(view.c2w, [1, 3, 4]);
    const pending: Promise<void>[] = [];
    for (let start = 0; start < width * height; start += chunk) {
      const R = Math.min(chunk, width * height - start);
      const out = scope(() =>
        noGrad(() => {
          const pixel = tensor(Uint32Array.from({ length: R }, (_, i) => start + i), [R], 'u32');
          const rays = generateRays(pixel, tensor(new Uint32Array(R), [R], 'u32'), c2w, width, view.intrinsics);
          const background = expand(this.background, [R, 3]);
          const zCoarse = stratifiedSamples(full([R], o.near), full([R], o.far), o.coarseSamples, { perturb: false });
          const coarse = this.fieldOutput(this.coarse, rays, zCoarse);
          if (!this.fine || o.fineSamples === 0) {
            return narrow(volumeRender(coarse.sigmaRaw, coarse.rgbRaw, zCoarse, rays.dirNorm, { activation: o.activation, background }), 1, 0, 3);
          }
          const weights = sampleWeights(coarse.sigmaRaw, zCoarse, rays.dirNorm, o.activation);
          const zAll = importanceSamples(zCoarse, weights, o.fineSamples, { perturb: false });
          const fine = this.fieldOutput(this.fine, rays, zAll);
          return narrow(volumeRender(fine.sigmaRaw, fine.rgbRaw, zAll, rays.dirNorm, { activation: o.activation, background }), 1, 0, 3);
        }),
      );
      pending.push(
        out.data().then((values) => {
          image.set(values, start * 3);
          out.dispose();
        }),
      );
    }
    await Promise.all(pending);
    c2w.dispose();
    return image;
  }

  dispose(): void {
    this.background.dispose();
  }
}

/** Peak signal-to-noise ratio of images in [0, 1]. */
export function psnr(image: ArrayLike<number>, truth: ArrayLike<number>): number {
  let sum = 0;
  for (let i = 0; i < truth.length; i++) sum += (image[i] - truth[i]) ** 2;
  return -10 * Math.log10(sum / truth.length);
}
