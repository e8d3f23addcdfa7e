/**
 * A small MLP training step (x [B, 3] → 64 → 64 → 3, relu, MSE loss, forward + backward + SGD through ops), timed
 * per step, and the `autoFlushEvery` sweep: the same steps with the runtime submitting every F dispatches.
 * Steps are queued back to back (no readback inside), as a training loop does between logging points.
 */
import * as nd from '../src/index.ts';
import { forceMatmulKernel, matmulKernelKind, runtime, type MatmulKernelKind, type Tensor } from '../src/index.ts';
import { timeGpu } from './timing.ts';

interface Mlp {
  params: Tensor[];
  x: Tensor;
  y: Tensor;
  step(): void;
  dispose(): void;
}

function makeMlp(batch: number, width = 64, lr = 1e-3): Mlp {
  const rng = new nd.Rng(11);
  const param = (shape: number[], std: number): Tensor => {
    const t = nd.keep(nd.randn(shape, rng, std));
    t.requiresGrad = true;
    return t;
  };
  const w1 = param([3, width], Math.sqrt(2 / 3));
  const b1 = param([width], 0.01);
  const w2 = param([width, width], Math.sqrt(2 / width));
  const b2 = param([width], 0.01);
  const w3 = param([width, 3], Math.sqrt(1 / width));
  const b3 = param([3], 0.01);
  const params = [w1, b1, w2, b2, w3, b3];
  const x = nd.keep(nd.rand([batch, 3], rng, -1, 1));
  const y = nd.keep(nd.rand([batch, 3], rng, 0, 1));
  const rt = runtime();
  return {
    params,
    x,
    y,
    step() {
      nd.scope(() => {
        const h1 = nd.matmul(x, w1, { bias: b1, activation: 'relu' });
        const h2 = nd.matmul(h1, w2, { bias: b2, activation: 'relu' });
        const out = nd.matmul(h2, w3, { bias: b3 });
        const loss = nd.mean(nd.square(nd.sub(out, y)));
        nd.backward(loss);
        nd.noGrad(() => {
          for (const p of params) {
            // SGD in place: p ← p − lr·∇p (the engine's optimizers live elsewhere; this keeps the step self-contained).
            const updated = nd.sub(p, nd.mul(p.grad!, lr));
            rt.copy(updated.view, p.view);
            p.grad!.dispose();
            p.grad = null;
          }
        });
      });
    },
    dispose() {
      for (const t of [...params, x, y]) t.dispose();
    },
  };
}

export interface StepResult {
  batch: number;
  /** The matmul kernel the step ran on ('auto: …' when chosen per call by the engine). */
  matmul: string;
  msPerStep: number;
  dispatchesPerStep: number;
}

const STEPS_PER_REP = 4;

export async function benchMlpStep(batch: number, reps = 7, matmul: MatmulKernelKind | null = null): Promise<StepResult> {
  const rt = runtime();
  forceMatmulKernel(matmul);
  const kind = matmul ?? `auto: ${matmulKernelKind()}, generic for N < 8`;
  const mlp = makeMlp(batch);
  const before = rt.stats.dispatches;
  mlp.step();
  const dispatchesPerStep = rt.stats.dispatches - before;
  const timing = await timeGpu(() => {
    for (let s = 0; s < STEPS_PER_REP; s++) mlp.step();
  }, reps);
  mlp.dispose();
  forceMatmulKernel(null);
  return { batch, matmul: kind, msPerStep: timing.ms / STEPS_PER_REP, dispatchesPerStep };
}

export interface FlushResult {
  batch: number;
  /** ms per step for each autoFlushEvery value (key: the value, 'never' for no automatic submits). */
  msPerStep: Record<string, number>;
  best: string;
}

export async function benchAutoFlush(batches: number[], settings: number[], reps = 5): Promise<FlushResult[]> {
  const rt = runtime();
  const saved = rt.autoFlushEvery;
  const results: FlushResult[] = [];
  for (const batch of batches) {
    const mlp = makeMlp(batch);
    const msPerStep: Record<string, number> = {};
    // Each setting is measured twice, interleaved, and the better median kept: the machine drifts between runs.
    for (let round = 0; round < 2; round++) {
      for (const every of settings) {
        rt.autoFlushEvery = every;
        const key = every >= Number.MAX_SAFE_INTEGER ? 'never' : String(every);
        const timing = await timeGpu(() => {
          for (let s = 0; s < STEPS_PER_REP; s++) mlp.step();
        }, reps);
        const ms = timing.ms / STEPS_PER_REP;
        msPerStep[key] = Math.min(msPerStep[key] ?? Infinity, ms);
      }
    }
    mlp.dispose();
    const best = Object.entries(msPerStep).sort((a, b) => a[1] - b[1])[0][0];
    results.push({ batch, msPerStep, best });
  }
  rt.autoFlushEvery = saved;
  return results;
}
