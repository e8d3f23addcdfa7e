/**
 * Fitting a radiance field to posed images: ray batches, stratified (+ importance) sampling or occupancy-guided
 * marching with packed samples, the field, the fused render-and-loss kernel, Adam — one queued training step with
 * no readback — and evaluation (PSNR) by rendering whole views in chunks.
 */
import { Tensor } from '../../tensor/tensor.ts';
import { tensor, full, zeros } from '../../tensor/create.ts';
import { Rng } from '../../tensor/random.ts';
import { keep, scope } from '../../tensor/scope.ts';
import { backward, noGrad } from '../../autograd/tape.ts';
import { add, affine, div, mul, sub } from '../../ops/elementwise.ts';
import { mean } from '../../ops/reduce.ts';
import { expand, reshape } from '../../ops/shape.ts';
import { indexSelect, narrow } from '../../ops/indexing.ts';
import { generateRays, importanceSamples, sampleWeights, stratifiedSamples, type Rays } from '../../ops/nerf.ts';
import { volumeRender, volumeRenderLoss } from '../../ops/render.ts';
import { OccupancyGrid, accumulateRound, disposeMarch, initialRoundState, marchRays, roundWalkedSamples, volumeRenderRaggedLoss, type MarchResult } from '../../ops/occupancy.ts';
import type { DensityActivation } from '../../kernels/render/composite.ref.ts';
import type { HashTablePrecision } from '../../kernels/encoding/hashgrid.ts';
import type { Module } from '../module.ts';
import type { RowsAt } from '../../ops/mlp.ts';
import type { FieldOutput } from './field.ts';
import type { View } from './scene.ts';

export type RadianceField = Module<[Tensor, Tensor], FieldOutput>;

/** A field whose forward splits into density (+ features) and colour, as HashField's: rendering colours fewer samples. */
export interface SplitField {
  /** `table: 'f16'`: read an f16 copy of the field's table where it has one (rendering only; HashField). */
  densityFeatures(points: Tensor, options?: { table?: HashTablePrecision }): { sigmaRaw: Tensor; hidden: Tensor };
  /** Raw colour [P, 3]; with `at`, only the rows at.index (the others 0). */
  colourFrom(dirs: Tensor, hidden: Tensor, at?: RowsAt): Tensor;
}

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
  /**
   * Composite each training ray over a random background colour, with the target recomposited to match from the
   * data's alpha (instant-ngp): empty space can then no longer hide behind a white background, so its density goes
   * to zero and the occupancy grid prunes it. Needs `PosedImages` with alpha.
   */
  randomBackground?: boolean;
  /**
   * 'stratified' (default): `coarseSamples` per ray between near and far (+ importance samples for the fine field).
   * 'occupancy': instant-ngp style marching through an occupancy grid of the (coarse) field's density, samples
   * only in occupied cells, packed; the grid is updated every `occupancy.updateEvery` steps.
   */
  sampler?: 'stratified' | 'occupancy';
  occupancy?: Partial<OccupancySamplerOptions>;
  /**
   * How occupancy rendering reads a split field's hash table: 'f16' (default) reads an f16 copy, made once per
   * table change (half the table loads; each feature rounded with relative error ≤ 2^-11: measured on a trained
   * fit-scene model, held-out PSNR unchanged to 4 decimals, no pixel moved by more than 1.8e-4); 'f32' reads the
   * trained table as is. Tables with one feature per level are always read as f32. Training always reads f32.
   */
  renderTable?: HashTablePrecision;
}

export interface OccupancySamplerOptions {
  /** Scene box half-size: the grid covers [−bound, bound]³. */
  bound: number;
  resolution: number;
  /** Lattice step dt = 2√3·bound / stepsPerDiagonal (instant-ngp: 1024 for its largest scenes). */
  stepsPerDiagonal: number;
  maxSamples: number;
  updateEvery: number;
  /** Steps during which every update touches every cell (torch-ngp: 256). */
  warmupSteps: number;
  decay: number;
  threshold: number;
  /** Samples per ray the packed arrays start with (capacity = rays × this); `adaptCapacity` then tracks usage. */
  initialSamplesPerRay: number;
  /** Early termination of compositing (transmittance below this). */
  transmittanceThreshold: number;
  /**
   * Rendering marches in rounds of these many samples per ray, then one round for the rest of maxSamples; a ray
   * leaves the rounds once opaque (`renderViewOccupancy`). [] marches once.
   */
  renderRoundSamples: number[];
}

/** Samples per ray of each rendering round: renderRoundSamples (clipped to maxSamples), then the rest. */
export function roundSchedule(o: Pick<OccupancySamplerOptions, 'maxSamples' | 'renderRoundSamples'>): number[] {
  const rounds: number[] = [];
  let left = o.maxSamples;
  for (const k of o.renderRoundSamples) {
    if (!Number.isInteger(k) || k < 1) throw new Error(`occupancy.renderRoundSamples must hold positive integers, got ${JSON.stringify(o.renderRoundSamples)}`);
    if (left <= k) break;
    rounds.push(k);
    left -= k;
  }
  rounds.push(left);
  return rounds;
}

const OCCUPANCY_DEFAULTS: Omit<OccupancySamplerOptions, 'bound'> = {
  resolution: 64,
  stepsPerDiagonal: 128,
  maxSamples: 128,
  updateEvery: 16,
  warmupSteps: 256,
  decay: 0.95,
  threshold: 0.01,
  initialSamplesPerRay: 64,
  transmittanceThreshold: 1e-4,
  renderRoundSamples: [16],
};

/** `NerfFitter.checkpointData()`: JSON state of a fit beyond its tensors. */
export interface FitterState {
  rng: number[];
  occupancyUpdates?: number;
  capacity?: number;
}

/** Posed views with their images, uploaded once. */
export class PosedImages {
  readonly c2w: Tensor;
  /** [views · height · width, 3] */
  readonly pixels: Tensor;
  readonly width: number;
  readonly height: number;
  /** [views · height · width, 1] opacity (when given): pixels = premultiplied colour + (1 − alpha) · white. */
  readonly alpha: Tensor | null;

  constructor(readonly views: View[], images: Float64Array[], alpha?: Float64Array[]) {
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
    if (alpha && alpha.length !== views.length) throw new Error(`PosedImages: ${alpha.length} alpha images for ${views.length} views`);
    const alphas = new Float32Array(views.length * width * height);
    alpha?.forEach((a, i) => alphas.set(a, i * width * height));
    this.alpha = alpha ? keep(tensor(alphas, [views.length * width * height, 1])) : null;
  }

  dispose(): void {
    this.c2w.dispose();
    this.pixels.dispose();
    this.alpha?.dispose();
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

/** Sample points per rendering chunk of the stratified path (activations stay well inside one binding). */
const MAX_POINTS_PER_CHUNK = 1 << 16;

export class NerfFitter {
  private readonly rng: Rng;
  private readonly background: Tensor;
  /** The occupancy sampler's state (null for stratified sampling). */
  readonly occupancy: { grid: OccupancyGrid; options: OccupancySamplerOptions; dt: number; capacity: number } | null = null;
  /**
   * What the last occupancy render evaluated: rounds marched (over all chunks), samples given to the field's
   * density and to its colour.
   */
  lastRenderStats: { rounds: number; densitySamples: number; colourSamples: number } | null = null;
  /** The last training march's requested sample count [1] u32 (kept for `adaptCapacity`). */
  private lastRequested: Tensor | null = null;

  constructor(
    readonly coarse: RadianceField,
    readonly fine: RadianceField | null,
    readonly data: PosedImages,
    readonly options: FitOptions,
  ) {
    if (options.fineSamples > 0 && !fine) throw new Error('NerfFitter: fineSamples > 0 needs a fine field');
    if (options.renderTable !== undefined && options.renderTable !== 'f32' && options.renderTable !== 'f16') {
      throw new Error(`NerfFitter: renderTable must be 'f32' or 'f16', got ${JSON.stringify(options.renderTable)}`);
    }
    this.rng = new Rng(options.seed);
    this.background = keep(tensor(options.background, [1, 3]));
    if ((options.sampler ?? 'stratified') === 'occupancy') {
      if (fine || options.fineSamples > 0) throw new Error('NerfFitter: the occupancy sampler renders one field (no fine field, fineSamples 0)');
      if (!(options.occupancy?.bound && options.occupancy.bound > 0)) throw new Error('NerfFitter: the occupancy sampler needs occupancy.bound (the scene box half-size)');
      const o: OccupancySamplerOptions = { ...OCCUPANCY_DEFAULTS, ...options.occupancy } as OccupancySamplerOptions;
      const dt = (2 * Math.sqrt(3) * o.bound) / o.stepsPerDiagonal;
      // The grid holds σ·dt (instant-ngp): empty means one step through the cell is under 1% opaque.
      const grid = new OccupancyGrid({ resolution: o.resolution, bound: o.bound, decay: o.decay, threshold: o.threshold, activation: options.activation, densityScale: dt });
      this.occupancy = { grid, options: o, dt, capacity: options.raysPerStep * o.initialSamplesPerRay };
    }
  }

  /**
   * What a checkpoint needs beyond the fields' parameters and the optimizer, so that a resumed fit continues as if
   * never stopped: the occupancy grid's tensors, and as JSON the batch sampler's random stream, the grid's update
   * count (which quarter it refreshes next) and the packed-sample capacity.
   */
  checkpointTensors(): Record<string, Tensor> {
    const occ = this.occupancy;
    return occ ? { 'occupancy.grid': occ.grid.grid, 'occupancy.bitfield': occ.grid.bitfield } : {};
  }

  checkpointData(): FitterState {
    const occ = this.occupancy;
    return { rng: this.rng.getState(), ...(occ ? { occupancyUpdates: occ.grid.updates, capacity: occ.capacity } : {}) };
  }

  /** Restores `checkpointData()` (the tensors are loaded in place by the checkpoint reader). */
  restoreData(state: FitterState): void {
    this.rng.setState(state.rng);
    const occ = this.occupancy;
    if (!occ) return;
    if (!Number.isInteger(state.occupancyUpdates) || !Number.isInteger(state.capacity) || state.capacity! < 1) {
      throw new Error(`NerfFitter.restoreData: the checkpoint has no occupancy sampler state (got ${JSON.stringify(state)})`);
    }
    occ.grid.updates = state.occupancyUpdates!;
    occ.capacity = state.capacity!;
  }

  /** Raw density of the (coarse) field at points [P, 3]: its `densityRaw` when it has one, else its forward's. */
  private densityAt(points: Tensor): Tensor {
    const field = this.coarse as RadianceField & { densityRaw?: (points: Tensor) => Tensor };
    if (typeof field.densityRaw === 'function') return field.densityRaw(points);
    const dirs = expand(this.unitDirection(), [points.shape[0], 3]);
    return this.coarse.forward(points, dirs).sigmaRaw;
  }

  private unitDir: Tensor | null = null;
  private unitDirection(): Tensor {
    return (this.unitDir ??= keep(tensor([0, 0, 1], [1, 3])));
  }

  /** Queues the occupancy grid's EMA update when this step is due one. */
  private updateOccupancy(step: number): void {
    const occ = this.occupancy!;
    if ((step - 1) % occ.options.updateEvery !== 0) return;
    occ.grid.update((points) => this.densityAt(points), { seed: step, all: step <= occ.options.warmupSteps });
  }

  private march(rays: Rays, R: number, capacity: number, jitter: boolean, seed: number, maxSamples = this.occupancy!.options.maxSamples, startStep?: Tensor, zeroPadding = true): MarchResult {
    const o = this.options;
    const occ = this.occupancy!;
    return marchRays(rays, full([R], o.near), full([R], o.far), occ.grid, { dt: occ.dt, maxSamples, capacity, jitter, seed, startStep, zeroPadding });
  }

  /**
   * Sizes the packed sample arrays from the last training step's sample count (one small readback: call it where
   * you read anyway, e.g. when logging the loss). Capacity = 1.2 × the count, in steps of 1024, at least 4 per ray.
   * Returns the count and the capacity.
   */
  async adaptCapacity(): Promise<{ requested: number; capacity: number } | null> {
    const occ = this.occupancy;
    if (!occ || !this.lastRequested) return null;
    const [requested] = await this.lastRequested.data();
    const R = this.options.raysPerStep;
    const wanted = Math.ceil((requested * 1.2) / 1024) * 1024;
    occ.capacity = Math.min(R * occ.options.maxSamples, Math.max(R * 4, wanted));
    return { requested, capacity: occ.capacity };
  }

  private occupancyLoss(step: number, rays: Rays, target: Tensor, background: Tensor): Tensor {
    const occ = this.occupancy!;
    const o = this.options;
    const R = o.raysPerStep;
    this.updateOccupancy(step);
    const m = this.march(rays, R, occ.capacity, true, step * 2 + 1);
    this.lastRequested?.dispose();
    this.lastRequested = keep(m.requested);
    const out = this.coarse.forward(m.points, m.dirs);
    const renderOptions = { activation: o.activation, transmittanceThreshold: occ.options.transmittanceThreshold };
    const loss = mean(volumeRenderRaggedLoss(reshape(out.sigmaRaw, [-1]), out.rgbRaw, m.runs, m.z, m.delta, background, target, renderOptions));
    return loss;
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
    const index = tensor(flat, [R], 'i32');
    let target = indexSelect(this.data.pixels, 0, index);
    let background = expand(this.background, [R, 3]);
    if (o.randomBackground) {
      if (!this.data.alpha) throw new Error('NerfFitter: randomBackground needs PosedImages with alpha');
      // target = premultiplied + (1 − α)·b = pixels + (1 − α)(b − white), the images being composited over white.
      const random = new Float32Array(R * 3);
      for (let i = 0; i < random.length; i++) random[i] = this.rng.uniform();
      const b = tensor(random, [R, 3]);
      const transparency = affine(indexSelect(this.data.alpha, 0, index), -1, 1);
      target = add(target, mul(transparency, sub(b, background)));
      background = b;
    }
    if (this.occupancy) return this.occupancyLoss(step, rays, target, background);
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
    if (this.occupancy) {
      // Rounds sync with the host: fewer, larger chunks (a 128² frame in one) amortise that.
      await this.renderViewOccupancy(view, c2w, image, Math.max(chunk, 16384));
      c2w.dispose();
      return image;
    }
    const pending: Promise<void>[] = [];
    // Rays per chunk bounded by samples: a [points, width] activation must fit one storage binding (128 MiB on
    // lavapipe), e.g. 4096 rays × 128 samples × 128 floats would not.
    const samplesPerRay = o.coarseSamples + (this.fine ? o.fineSamples : 0);
    chunk = Math.max(1, Math.min(chunk, Math.floor(MAX_POINTS_PER_CHUNK / samplesPerRay)));
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

  /**
   * Occupancy rendering in rounds (instant-ngp's iterative inference march): each round marches every ray that is
   * still transparent a few more samples from where the last round stopped, evaluates the field there, and
   * composites into a running per-ray state; a ray stops being marched once T < transmittanceThreshold. So the
   * field is not evaluated behind surfaces: with one march, ~45% of fit-scene's samples lie past termination
   * (inside the solids) and each would still go through the hash grid and the density MLP. Round sizes are
   * `renderRoundSamples`, then the rest of maxSamples; the image equals the one-march image exactly (tested).
   * Each round reads back its sample count (it sizes the field's tensors; read together with the previous
   * round's walked count, so a round costs one host sync). A field that splits (`SplitField`: HashField) gets
   * density at every marched sample and colour only at those compositing reads (listed on the GPU).
   */
  private async renderViewOccupancy(view: View, c2w: Tensor, image: Float32Array, chunk: number): Promise<void> {
    const { width, height } = view;
    const occ = this.occupancy!;
    const o = this.options;
    const rounds = roundSchedule(occ.options);
    const renderOptions = { activation: o.activation, transmittanceThreshold: occ.options.transmittanceThreshold };
    const field = this.coarse as RadianceField & Partial<SplitField>;
    const split = typeof field.densityFeatures === 'function' && typeof field.colourFrom === 'function';
    const stats = (this.lastRenderStats = { rounds: 0, densitySamples: 0, colourSamples: 0 });
    for (let start = 0; start < width * height; start += chunk) {
      const R = Math.min(chunk, width * height - start);
      const { rays, state, background } = scope(() =>
        noGrad(() => {
          const pixel = tensor(Uint32Array.from({ length: R }, (_, i) => start + i), [R], 'u32');
          const rays = generateRays(pixel, tensor(new Uint32Array(R), [R], 'u32'), c2w, width, view.intrinsics);
          for (const t of [rays.origin, rays.direction, rays.dirNorm]) keep(t);
          return { rays, state: keep(initialRoundState(R)), background: keep(expand(this.background, [R, 3])) };
        }),
      );
      // A march's outputs outlive the scope that frees its temporaries (the near/far tensors).
      const march = (samplesPerRay: number, startStep?: Tensor): MarchResult =>
        scope(() => noGrad(() => {
          // Room for every sample of every ray, and the field runs over the first `count` rows only: no padding to clear.
          const m = this.march(rays, R, R * samplesPerRay, false, 0, samplesPerRay, startStep, false);
          for (const t of Object.values(m)) keep(t);
          return m;
        }));
      let m = march(rounds[0]);
      let [count] = await m.count.data();
      let out: Tensor | null = null;
      for (let round = 0; out === null; round++) {
        stats.rounds += 1;
        stats.densitySamples += count;
        // Only the first `count` samples are real: the field runs over those (one padding row when there are none).
        const n = Math.max(1, count);
        const current = m;
        // Prefix views (no copies); disposed with the round, so that the march's buffers go back to the pool.
        const samples = { points: narrow(current.points, 0, 0, n), dirs: narrow(current.dirs, 0, 0, n), z: narrow(current.z, 0, 0, n), delta: narrow(current.delta, 0, 0, n) };
        for (const t of Object.values(samples)) keep(t);
        const density = scope(() => noGrad(() => {
          const f = split ? field.densityFeatures!(samples.points, { table: o.renderTable ?? 'f16' }) : this.coarse.forward(samples.points, samples.dirs);
          const sigmaRaw = 'hidden' in f ? f.sigmaRaw : reshape(f.sigmaRaw, [-1]);
          const walked = roundWalkedSamples(sigmaRaw, current.runs, samples.delta, state, current.endStep, renderOptions);
          return {
            sigmaRaw: keep(sigmaRaw),
            hidden: 'hidden' in f ? keep(f.hidden) : null,
            rgbRaw: 'rgbRaw' in f ? keep(f.rgbRaw) : null,
            walked: keep(walked.index),
            walkedCount: keep(walked.count),
            nextStart: keep(walked.nextStart),
          };
        }));
        const more = round + 1 < rounds.length;
        const next = more ? march(rounds[round + 1], density.nextStart) : null;
        // One host sync for both counts.
        const [[walkedCount], nextCount] = await Promise.all([density.walkedCount.data(), next ? next.count.data().then((c) => c[0]) : 0]);
        stats.colourSamples += split ? walkedCount : count;
        const finish = !next || nextCount === 0;
        out = scope(() => noGrad(() => {
          // Rows of samples compositing never reads stay 0 (and are never read).
          const rgbRaw = density.rgbRaw ?? (walkedCount === 0 ? zeros([n, 3]) : field.colourFrom!(samples.dirs, density.hidden!, { index: narrow(density.walked, 0, 0, walkedCount), rows: n }));
          const rows = accumulateRound(density.sigmaRaw, rgbRaw, current.runs, samples.z, samples.delta, state, background, finish, renderOptions);
          return rows && narrow(rows, 1, 0, 3);
        }));
        for (const t of [...Object.values(density), ...Object.values(samples)]) t?.dispose();
        disposeMarch(current);
        if (finish) {
          if (next) disposeMarch(next);
        } else {
          m = next!;
          count = nextCount;
        }
      }
      image.set(await out.data(), start * 3);
      out.dispose();
      for (const t of [rays.origin, rays.direction, rays.dirNorm, state, background]) t.dispose();
    }
  }

  dispose(): void {
    this.background.dispose();
    this.occupancy?.grid.dispose();
    this.lastRequested?.dispose();
    this.unitDir?.dispose();
  }
}

/** Peak signal-to-noise ratio of images in [0, 1]. */
export function psnr(image: ArrayLike<number>, truth: ArrayLike<number>): number {
  let sum = 0;
  for (let i = 0; i < truth.length; i++) sum += (image[i] - truth[i]) ** 2;
  return -10 * Math.log10(sum / truth.length);
}
