/**
 * Occupancy-guided sampling as ops: the occupancy grid (EMA of the field's density, packed bitfield), ray marching
 * with sample compaction, and volume rendering over the packed samples (differentiable, loss fusable).
 * Kernels: src/kernels/render/{occupancy,march,composite-ragged}.ts.
 *
 * Sizes on the GPU. The marcher allocates samples with an atomic counter, so how many there are is known only on
 * the GPU. The packed arrays are allocated at a fixed `capacity` (rays × a sample budget) and every tensor downstream
 * (the field's hash grid and MLPs, which take their row count from tensor shapes) runs over all `capacity` rows:
 * a step's shapes never depend on the data and no step reads back. Rows past the count are zero (points at the box
 * centre: finite field outputs) and the ragged compositor never reads them and gives them zero gradient, so they
 * change nothing but cost compute; the caller sizes `capacity` from the observed count (`MarchResult.count`, read
 * when it reads something anyway) to keep that waste small. Per-sample kernels that can read the count from the
 * GPU are dispatched indirectly over exactly `count` samples (`sample_positions`): the 1-thread
 * `sample_dispatch_args` kernel turns the counter into their workgroup grid.
 */
import { defineOp } from '../autograd/op.ts';
import { runtime } from '../kernels/runtime/runtime.ts';
import { occupancyCellPoints, occupancyPack, occupancyUpdate } from '../kernels/render/occupancy.ts';
import { updateSlots } from '../kernels/render/occupancy.ref.ts';
import { marchRays as marchKernel, sampleDispatchArgs, samplePositions, SAMPLE_POSITIONS_WORKGROUP } from '../kernels/render/march.ts';
import { compositeRaggedBackward, compositeRaggedForward, type RaggedCompositeConsts } from '../kernels/render/composite-ragged.ts';
import { compositeRoundsAccumulate, compositeRoundsWalked, ROUND_STATE } from '../kernels/render/composite-rounds.ts';
import type { DensityActivation } from '../kernels/render/composite.ref.ts';
import { Tensor, shapeString } from '../tensor/tensor.ts';
import { full, tensor } from '../tensor/create.ts';
import { keep } from '../tensor/scope.ts';
import { noGrad } from '../autograd/tape.ts';
import { mean } from './reduce.ts';
import type { Rays } from './nerf.ts';

export interface OccupancyGridOptions {
  /** Cells per axis (G³ cells over [−bound, bound]³). */
  resolution?: number;
  bound: number;
  /** EMA decay per update (torch-ngp: 0.95). */
  decay?: number;
  /** Upper clip of the occupancy threshold min(mean, threshold) (instant-ngp, torch-ngp: 0.01). */
  threshold?: number;
  /**
   * The grid stores scale · σ. instant-ngp stores the optical thickness of one minimal step (scale = dt: a cell is
   * empty when a step through it would be < 1% opaque); torch-ngp stores σ (scale = 1, the default).
   */
  densityScale?: number;
  activation?: DensityActivation;
}

/**
 * One cascade of instant-ngp's density grid. `update(densityOf, step)` queues one EMA update: during warm-up every
 * cell, afterwards a rotating quarter (torch-ngp samples a random quarter plus the occupied cells; a rotating
 * quarter refreshes every cell within four updates, deterministically). The bitfield starts all-occupied.
 */
export class OccupancyGrid {
  readonly resolution: number;
  readonly bound: number;
  readonly decay: number;
  readonly threshold: number;
  readonly activation: DensityActivation;
  readonly densityScale: number;
  /** [G³] f32 density (× densityScale) per cell. */
  readonly grid: Tensor;
  /** [⌈G³/32⌉] u32, bit c = cell c occupied. */
  readonly bitfield: Tensor;
  /** Updates queued so far (which quarter the next one refreshes; a checkpoint stores it). */
  updates = 0;

  constructor(options: OccupancyGridOptions) {
    this.resolution = options.resolution ?? 64;
    this.bound = options.bound;
    this.decay = options.decay ?? 0.95;
    this.threshold = options.threshold ?? 0.01;
    this.activation = options.activation ?? 'exp';
    this.densityScale = options.densityScale ?? 1;
    if (!Number.isInteger(this.resolution) || this.resolution < 1 || this.resolution > 1024) {
      throw new Error(`OccupancyGrid: resolution must be an integer in 1..1024, got ${this.resolution}`);
    }
    if (!(this.bound > 0)) throw new Error(`OccupancyGrid: bound must be positive, got ${this.bound}`);
    this.grid = keep(full([this.cells], 0));
    this.bitfield = keep(full([this.words], 0xffffffff, 'u32'));
  }

  get cells(): number {
    return this.resolution ** 3;
  }

  get words(): number {
    return Math.ceil(this.cells / 32);
  }

  /**
   * Queues an update: points in the chosen cells (jittered with `seed`), their density by `densityOf` (raw σ [P]),
   * the EMA max, then the threshold and bitfield. `all` updates every cell (warm-up).
   */
  update(densityOf: (points: Tensor) => Tensor, opts: { seed: number; all: boolean; jitter?: boolean }): void {
    const stride = opts.all ? 1 : 4;
    const phase = opts.all ? 0 : this.updates % 4;
    this.updates += 1;
    const slots = updateSlots(this.cells, stride, phase);
    const rt = runtime();
    noGrad(() => {
      const points = Tensor.empty([slots, 3]);
      rt.dispatch(occupancyCellPoints, undefined, [points.view], {
        resolution: this.resolution, bound: this.bound, slots, stride, phase, seed: opts.seed, jitter: opts.jitter === false ? 0 : 1,
      }, slots);
      const sigmaRaw = densityOf(points);
      if (sigmaRaw.size !== slots) throw new Error(`OccupancyGrid.update: densityOf gave ${shapeString(sigmaRaw.shape)} for ${slots} points`);
      rt.dispatch(occupancyUpdate, { activation: this.activation }, [sigmaRaw.view, this.grid.view], { slots, stride, phase, decay: this.decay, scale: this.densityScale }, slots);
      points.dispose();
      sigmaRaw.dispose();
      this.pack();
    });
  }

  /** Recomputes the bitfield from the grid: cell > min(mean, threshold). */
  pack(): void {
    noGrad(() => {
      const average = mean(this.grid);
      runtime().dispatch(occupancyPack, undefined, [this.grid.view, average.view, this.bitfield.view], { cells: this.cells, words: this.words, threshold: this.threshold }, this.words);
      average.dispose();
    });
  }

  dispose(): void {
    this.grid.dispose();
    this.bitfield.dispose();
  }
}

export interface MarchOptions {
  /** World-space step (instant-ngp: √3·2·bound / 1024). */
  dt: number;
  maxSamples: number;
  /** Rows of the packed sample arrays. */
  capacity: number;
  /** Per-ray random lattice offset (training) or 0.5 (evaluation). */
  jitter: boolean;
  seed?: number;
  /** [R] u32 lattice step each ray starts at (default 0; DONE = 0xFFFFFFFF skips the ray): resumes a march. */
  startStep?: Tensor;
  /**
   * true (default): every row past the count is zero, as a caller that runs the field over the whole capacity
   * (training) needs. false skips those clears — for a 128² frame's last round, 66 MB, ~50 ms on lavapipe — and
   * is allowed only when capacity ≥ R · maxSamples: then no ray can overflow, so every row below the count is
   * written. Row 0 is zeroed either way (the one padding row a caller evaluates when the count is 0).
   */
  zeroPadding?: boolean;
}

export interface MarchResult {
  /** [R, 2] u32 (offset, count). */
  runs: Tensor;
  /**
   * [capacity, 3] sample points, unit directions, [capacity] depth (z units), interval; rows past the count are 0
   * (with `zeroPadding: false`, only row 0 is).
   */
  points: Tensor;
  dirs: Tensor;
  z: Tensor;
  delta: Tensor;
  /** [1] u32: the number of valid samples (min(asked, capacity)), on the GPU. */
  count: Tensor;
  /** [1] u32: samples the rays asked for (> capacity means some rays were dropped). */
  requested: Tensor;
  /** [R] u32: the lattice step to resume each ray from, or 0xFFFFFFFF when it left its range. */
  endStep: Tensor;
}

/** Marches rays (with per-ray near/far [R] in z units) through the grid, emitting packed samples. No gradient. */
export function marchRays(rays: Rays, near: Tensor, far: Tensor, grid: OccupancyGrid, opts: MarchOptions): MarchResult {
  const R = rays.origin.shape[0];
  if (rays.direction.shape[0] !== R || near.size !== R || far.size !== R) {
    throw new Error(`marchRays: origin ${shapeString(rays.origin.shape)}, direction ${shapeString(rays.direction.shape)}, near ${shapeString(near.shape)}, far ${shapeString(far.shape)} disagree on the ray count`);
  }
  const capacity = opts.capacity;
  if (!Number.isInteger(capacity) || capacity < 1) throw new Error(`marchRays: capacity must be a positive integer, got ${capacity}`);
  if (!(opts.dt > 0) || !(opts.maxSamples >= 1)) throw new Error(`marchRays: need dt > 0 and maxSamples ≥ 1, got dt ${opts.dt}, maxSamples ${opts.maxSamples}`);
  const rt = runtime();
  const requested = Tensor.empty([1], 'u32');
  const runs = Tensor.empty([R, 2], 'u32');
  const sampleRay = Tensor.empty([capacity], 'u32');
  const z = Tensor.empty([capacity]);
  const delta = Tensor.empty([capacity]);
  const points = Tensor.empty([capacity, 3]);
  const dirs = Tensor.empty([capacity, 3]);
  const args = Tensor.empty([3], 'u32');
  const count = Tensor.empty([1], 'u32');
  const endStep = Tensor.empty([R], 'u32');
  const scratch = Tensor.empty([Math.max(1, R * opts.maxSamples)]);
  const startStep = opts.startStep ?? Tensor.empty([R], 'u32');
  if (!opts.startStep) rt.clear(startStep.view);
  else if (startStep.size !== R || startStep.dtype !== 'u32') throw new Error(`marchRays: startStep must be u32 [${R}], got ${shapeString(startStep.shape)} ${startStep.dtype}`);
  rt.clear(requested.view);
  // Padding rows must hold finite values: the field runs over them and their (zero) gradients multiply them.
  // sample_ray too: a ray whose run overflows the capacity leaves its reserved rows unwritten, and
  // sample_positions still reads them (they lie below min(counter, capacity)); a stale index there would read
  // outside `direction` and make 0/0 directions — NaN that reached the colour MLP's weights through dW = dZᵀ·X
  // (0 · NaN), collapsing training to a constant colour.
  const zeroPadding = opts.zeroPadding ?? true;
  if (!zeroPadding && capacity < R * opts.maxSamples) {
    throw new Error(`marchRays: zeroPadding false needs capacity ≥ rays · maxSamples (${R} · ${opts.maxSamples}), got ${capacity}: rays that overflow leave rows unwritten`);
  }
  for (const t of [sampleRay, z, delta, points, dirs]) rt.clear(zeroPadding ? t.view : { ...t.view, size: (t.size / capacity) * 4 });
  if (R > 0) {
    rt.dispatch(
      marchKernel,
      undefined,
      [rays.origin.view, rays.direction.view, grid.bitfield.view, near.view, far.view, startStep.view, requested.view, runs.view, sampleRay.view, z.view, delta.view, endStep.view, scratch.view],
      {
        rays: R, capacity, resolution: grid.resolution, bound: grid.bound, dt: opts.dt, max_samples: opts.maxSamples,
        seed: opts.seed ?? 0, jitter: opts.jitter ? 1 : 0,
      },
      R,
    );
  }
  rt.dispatch(sampleDispatchArgs, undefined, [requested.view, args.view, count.view], { capacity, workgroup_size: SAMPLE_POSITIONS_WORKGROUP }, [1, 1, 1]);
  rt.dispatchIndirect(samplePositions, undefined, [rays.origin.view, rays.direction.view, sampleRay.view, z.view, count.view, points.view, dirs.view], { capacity }, args.view);
  sampleRay.dispose();
  scratch.dispose();
  args.dispose();
  if (!opts.startStep) startStep.dispose();
  return { runs, points, dirs, z, delta, count, requested, endStep };
}

export function disposeMarch(m: MarchResult): void {
  for (const t of [m.runs, m.points, m.dirs, m.z, m.delta, m.count, m.requested, m.endStep]) t.dispose();
}

// ---------------------------------------------------------------------------------------------------------------
// Ragged volume rendering

export interface RaggedRenderOptions {
  activation?: DensityActivation;
  /** Stop once transmittance < this (0 = exact). */
  transmittanceThreshold?: number;
}

interface RaggedData {
  runs: Tensor;
  z: Tensor;
  delta: Tensor;
  background: Tensor;
  target?: Tensor;
}

function validateRagged(op: string, sigmaRaw: Tensor, rgbRaw: Tensor, d: RaggedData): number {
  const N = sigmaRaw.size;
  const R = d.runs.shape[0];
  const bad = (what: string): never => {
    throw new Error(`${op}: ${what} (sigmaRaw ${shapeString(sigmaRaw.shape)}, rgbRaw ${shapeString(rgbRaw.shape)}, runs ${shapeString(d.runs.shape)}, z ${shapeString(d.z.shape)}, delta ${shapeString(d.delta.shape)}, background ${shapeString(d.background.shape)})`);
  };
  if (sigmaRaw.rank !== 1) bad('sigmaRaw must be [N]');
  if (rgbRaw.rank !== 2 || rgbRaw.shape[0] !== N || rgbRaw.shape[1] !== 3) bad('rgbRaw must be [N, 3]');
  if (d.runs.rank !== 2 || d.runs.shape[1] !== 2 || d.runs.dtype !== 'u32') bad('runs must be u32 [R, 2]');
  if (d.z.size !== N || d.delta.size !== N) bad('z and delta must have N elements');
  if (d.background.rank !== 2 || d.background.shape[0] !== R || d.background.shape[1] !== 3) bad('background must be [R, 3]');
  if (d.target && (d.target.rank !== 2 || d.target.shape[0] !== R || d.target.shape[1] !== 3)) bad(`target must be [R, 3], got ${shapeString(d.target.shape)}`);
  return R;
}

function raggedForward(sigmaRaw: Tensor, rgbRaw: Tensor, d: RaggedData, consts: RaggedCompositeConsts, threshold: number): { out: Tensor; loss: Tensor | null } {
  const R = d.runs.shape[0];
  const out = Tensor.empty([R, 5]);
  const loss = consts.loss ? Tensor.empty([R]) : null;
  const scratch = loss ?? Tensor.empty([1]);
  if (R > 0) {
    runtime().dispatch(
      compositeRaggedForward,
      consts,
      [d.runs.view, sigmaRaw.view, rgbRaw.view, d.z.view, d.delta.view, d.background.view, (d.target ?? d.background).view, out.view, scratch.view],
      { rays: R, t_threshold: threshold },
      R,
    );
  }
  if (!loss) scratch.dispose();
  return { out, loss };
}

function raggedBackward(sigmaRaw: Tensor, rgbRaw: Tensor, d: RaggedData, consts: RaggedCompositeConsts, threshold: number, out: Tensor, dL_dout: Tensor): [Tensor, Tensor] {
  const R = d.runs.shape[0];
  const rt = runtime();
  const dL_dsigmaRaw = Tensor.empty(sigmaRaw.shape);
  const dL_drgbRaw = Tensor.empty(rgbRaw.shape);
  // Samples outside every run (padding, dropped or terminated samples) get exactly zero.
  rt.clear(dL_dsigmaRaw.view);
  rt.clear(dL_drgbRaw.view);
  if (R > 0) {
    rt.dispatch(
      compositeRaggedBackward,
      consts,
      [d.runs.view, sigmaRaw.view, rgbRaw.view, d.z.view, d.delta.view, d.background.view, (d.target ?? d.background).view, out.view, dL_dout.view, dL_dsigmaRaw.view, dL_drgbRaw.view],
      { rays: R, t_threshold: threshold },
      R,
    );
  }
  return [dL_dsigmaRaw, dL_drgbRaw];
}

function sharedGradients(compute: () => [Tensor, Tensor], needSigma: boolean, needRgb: boolean): [() => Tensor | null, () => Tensor | null] {
  let result: [Tensor, Tensor] | null = null;
  const get = (): [Tensor, Tensor] => (result ??= compute());
  return [
    () => {
      if (!needSigma) return null;
      const [dSigma, dRgb] = get();
      if (!needRgb) dRgb.dispose();
      return dSigma;
    },
    () => {
      if (!needRgb) return null;
      const [dSigma, dRgb] = get();
      if (!needSigma) dSigma.dispose();
      return dRgb;
    },
  ];
}

type Settings = Required<RaggedRenderOptions>;

const raggedRenderOp = defineOp({
  name: 'volume_render_ragged',
  forward(ctx, sigmaRaw: Tensor, rgbRaw: Tensor, runs: Tensor, z: Tensor, delta: Tensor, background: Tensor, s: Settings) {
    const d = { runs, z, delta, background };
    validateRagged('volumeRenderRagged', sigmaRaw, rgbRaw, d);
    const { out } = raggedForward(sigmaRaw, rgbRaw, d, { activation: s.activation, loss: false }, s.transmittanceThreshold);
    ctx.save(sigmaRaw, rgbRaw, runs, z, delta, background, out);
    return out;
  },
  backward(ctx, dL_dout) {
    const [sigmaRaw, rgbRaw, runs, z, delta, background, out] = ctx.saved;
    const s = ctx.attrs.find((a) => typeof a === 'object' && a !== null) as Settings;
    const grads = sharedGradients(
      () => raggedBackward(sigmaRaw, rgbRaw, { runs, z, delta, background }, { activation: s.activation, loss: false }, s.transmittanceThreshold, out, dL_dout),
      ctx.needsGrad[0],
      ctx.needsGrad[1],
    );
    return [...grads, ...ctx.needsGrad.slice(2).map(() => null)];
  },
});

/**
 * Renders packed samples: sigmaRaw [N], rgbRaw [N, 3] (pre-sigmoid), runs [R, 2] u32, z [N], delta [N],
 * background [R, 3] (takes the leftover transmittance). Returns [R, 5] = (r, g, b, depth, acc).
 */
export function volumeRenderRagged(sigmaRaw: Tensor, rgbRaw: Tensor, runs: Tensor, z: Tensor, delta: Tensor, background: Tensor, opts: RaggedRenderOptions = {}): Tensor {
  return raggedRenderOp(sigmaRaw, rgbRaw, runs, z, delta, background, { activation: opts.activation ?? 'exp', transmittanceThreshold: opts.transmittanceThreshold ?? 0 });
}

const raggedLossOp = defineOp({
  name: 'volume_render_ragged_loss',
  forward(ctx, sigmaRaw: Tensor, rgbRaw: Tensor, runs: Tensor, z: Tensor, delta: Tensor, background: Tensor, target: Tensor, s: Settings) {
    const d = { runs, z, delta, background, target };
    validateRagged('volumeRenderRaggedLoss', sigmaRaw, rgbRaw, d);
    const { out, loss } = raggedForward(sigmaRaw, rgbRaw, d, { activation: s.activation, loss: true }, s.transmittanceThreshold);
    ctx.save(sigmaRaw, rgbRaw, runs, z, delta, background, target);
    ctx.own(out);
    return loss!;
  },
  backward(ctx, dL_dloss) {
    const [sigmaRaw, rgbRaw, runs, z, delta, background, target] = ctx.saved;
    const [out] = ctx.owned;
    const s = ctx.attrs.find((a) => typeof a === 'object' && a !== null) as Settings;
    const grads = sharedGradients(
      () => raggedBackward(sigmaRaw, rgbRaw, { runs, z, delta, background, target }, { activation: s.activation, loss: true }, s.transmittanceThreshold, out, dL_dloss),
      ctx.needsGrad[0],
      ctx.needsGrad[1],
    );
    return [...grads, ...ctx.needsGrad.slice(2).map(() => null)];
  },
});

/** Per-ray photometric loss |C − target|² [R] over packed samples, fused into one kernel forward and backward. */
export function volumeRenderRaggedLoss(sigmaRaw: Tensor, rgbRaw: Tensor, runs: Tensor, z: Tensor, delta: Tensor, background: Tensor, target: Tensor, opts: RaggedRenderOptions = {}): Tensor {
  return raggedLossOp(sigmaRaw, rgbRaw, runs, z, delta, background, target, { activation: opts.activation ?? 'exp', transmittanceThreshold: opts.transmittanceThreshold ?? 0 });
}


// ---------------------------------------------------------------------------------------------------------------
// Rendering in rounds (inference): composite-rounds.ts

/** The running compositing state [R, 6] = (r, g, b, depth, acc, T) before the first round: (0, 0, 0, 0, 0, 1). */
export function initialRoundState(rays: number): Tensor {
  const state = new Float32Array(rays * ROUND_STATE);
  for (let r = 0; r < rays; r++) state[r * ROUND_STATE + 5] = 1;
  return tensor(state, [rays, ROUND_STATE]);
}

function validateRound(op: string, sigmaRaw: Tensor, runs: Tensor, delta: Tensor, state: Tensor): number {
  const R = runs.shape[0];
  if (sigmaRaw.rank !== 1 || delta.size !== sigmaRaw.size || runs.rank !== 2 || runs.shape[1] !== 2 || runs.dtype !== 'u32' || state.rank !== 2 || state.shape[0] !== R || state.shape[1] !== ROUND_STATE) {
    throw new Error(`${op}: sigmaRaw [N], delta [N], runs u32 [R, 2], state [R, ${ROUND_STATE}] expected, got ${shapeString(sigmaRaw.shape)}, ${shapeString(delta.shape)}, ${shapeString(runs.shape)} ${runs.dtype}, ${shapeString(state.shape)}`);
  }
  return R;
}

/**
 * A round's samples that compositing will read from `state` on (`index` [N] i32, the first `count` [1] u32 of it),
 * and `nextStart` [R] u32: where each ray's next march resumes (the march's `endStep`, or DONE once the ray is
 * opaque or left its range). No gradient.
 */
export function roundWalkedSamples(sigmaRaw: Tensor, runs: Tensor, delta: Tensor, state: Tensor, endStep: Tensor, opts: RaggedRenderOptions = {}): { index: Tensor; count: Tensor; nextStart: Tensor } {
  const R = validateRound('roundWalkedSamples', sigmaRaw, runs, delta, state);
  if (endStep.size !== R || endStep.dtype !== 'u32') throw new Error(`roundWalkedSamples: endStep must be u32 [${R}], got ${shapeString(endStep.shape)} ${endStep.dtype}`);
  const index = Tensor.empty([sigmaRaw.size], 'i32');
  const count = full([1], 0, 'u32');
  const nextStart = Tensor.empty([R], 'u32');
  if (R > 0) {
    runtime().dispatch(
      compositeRoundsWalked,
      { activation: opts.activation ?? 'exp' },
      [runs.view, sigmaRaw.view, delta.view, state.view, endStep.view, count.view, index.view, nextStart.view],
      { rays: R, t_threshold: opts.transmittanceThreshold ?? 0 },
      R,
    );
  }
  return { index, count, nextStart };
}

/**
 * Adds a round's samples to `state` (in place). With `finish` (the last round) returns the image rows [R, 5] =
 * (r, g, b, depth, acc) with the leftover transmittance given to `background` [R, 3], else null. No gradient.
 */
export function accumulateRound(sigmaRaw: Tensor, rgbRaw: Tensor, runs: Tensor, z: Tensor, delta: Tensor, state: Tensor, background: Tensor, finish: boolean, opts: RaggedRenderOptions = {}): Tensor | null {
  const R = validateRound('accumulateRound', sigmaRaw, runs, delta, state);
  if (rgbRaw.rank !== 2 || rgbRaw.shape[0] !== sigmaRaw.size || rgbRaw.shape[1] !== 3 || z.size !== sigmaRaw.size || background.rank !== 2 || background.shape[0] !== R || background.shape[1] !== 3) {
    throw new Error(`accumulateRound: rgbRaw [N, 3], z [N], background [R, 3] expected, got ${shapeString(rgbRaw.shape)}, ${shapeString(z.shape)}, ${shapeString(background.shape)} (N = ${sigmaRaw.size}, R = ${R})`);
  }
  const out = Tensor.empty([finish ? R : 1, 5]);
  if (R > 0) {
    runtime().dispatch(
      compositeRoundsAccumulate,
      { activation: opts.activation ?? 'exp' },
      [runs.view, sigmaRaw.view, rgbRaw.view, z.view, delta.view, background.view, state.view, out.view],
      { rays: R, t_threshold: opts.transmittanceThreshold ?? 0, finish: finish ? 1 : 0 },
      R,
    );
  }
  if (finish) return out;
  out.dispose();
  return null;
}
