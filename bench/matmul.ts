/**
 * Matmul GFLOP/s (2·N³ / t, N×N·N×N, f32) for our kernels and the peers a TypeScript user might pick, side by side.
 * Ours is timed from submit to completion (inputs already on the device, no readback); the peers as a user calls
 * them (see each row's note). Slow implementations skip the sizes they would need more than `budgetMs` per call for.
 */
import * as nd from '../src/index.ts';
import { forceMatmulKernel, matmulKernelKind, type MatmulKernelKind } from '../src/index.ts';
import { matmulGflops, timeGpu, timeHost } from './timing.ts';
import { gpujsMatmul, plainJsMatmul, tfjsWasmMatmul, type Peer } from './peers.ts';

export interface MatmulRow {
  name: string;
  note: string;
  /** GFLOP/s per N; null where not measured, with the reason in `skipped`. */
  gflops: Record<number, number | null>;
  /** GFLOP per CPU-second of this process (see `Timing.cpuMs`): robust to other load on a shared machine. */
  cpuGflops: Record<number, number | null>;
  skipped: Record<number, string>;
}

/** Predicts whether an implementation would exceed the budget at N from its rate at the previous size. */
function tooSlow(lastGflops: number | null, N: number, budgetMs: number): string | null {
  if (lastGflops === null) return null;
  const predictedMs = (2 * N ** 3) / (lastGflops * 1e6);
  return predictedMs > budgetMs ? `skipped: ~${(predictedMs / 1000).toFixed(0)} s per call` : null;
}

async function oursRow(kind: MatmulKernelKind, sizes: number[], budgetMs: number, auto: boolean): Promise<MatmulRow> {
  const row: MatmulRow = {
    name: `nerfad ${kind}${auto ? ' (auto choice)' : ''}`,
    note: 'queue time, inputs on device',
    gflops: {},
    cpuGflops: {},
    skipped: {},
  };
  forceMatmulKernel(kind);
  let last: number | null = null;
  for (const N of sizes) {
    // The auto choice is always measured (the targets need it); the alternatives skip sizes they are too slow for.
    const skip = auto ? null : tooSlow(last, N, budgetMs);
    if (skip) {
      row.gflops[N] = null;
      row.skipped[N] = skip;
      continue;
    }
    const rng = new nd.Rng(N);
    const a = nd.randn([N, N], rng);
    const b = nd.randn([N, N], rng);
    const timing = await timeGpu(() => nd.matmul(a, b).dispose(), N >= 2048 ? 3 : 7);
    a.dispose();
    b.dispose();
    last = row.gflops[N] = matmulGflops(N, timing.ms);
    row.cpuGflops[N] = matmulGflops(N, timing.cpuMs);
  }
  forceMatmulKernel(null);
  return row;
}

async function peerRow(peer: Peer, sizes: number[], budgetMs: number): Promise<MatmulRow> {
  const row: MatmulRow = { name: peer.name, note: peer.note, gflops: {}, cpuGflops: {}, skipped: {} };
  const why = await peer.unavailable();
  if (why) {
    for (const N of sizes) {
      row.gflops[N] = null;
      row.skipped[N] = why;
    }
    return row;
  }
  let last: number | null = null;
  for (const N of sizes) {
    const skip = tooSlow(last, N, budgetMs);
    if (skip) {
      row.gflops[N] = null;
      row.skipped[N] = skip;
      continue;
    }
    try {
      const run = await peer.prepare(N);
      // Slow peers get fewer repetitions; the first call (compilation, worker start-up) is not counted.
      const first = performance.now();
      await run();
      const firstMs = performance.now() - first;
      const reps = firstMs > budgetMs / 3 ? 1 : firstMs > 300 ? 3 : 5;
      const timing = await timeHost(run, reps, 0);
      last = row.gflops[N] = matmulGflops(N, timing.ms);
      row.cpuGflops[N] = matmulGflops(N, timing.cpuMs);
    } catch (error) {
      row.gflops[N] = row.cpuGflops[N] = null;
      row.skipped[N] = `failed: ${(error as Error).message.split('\n')[0].slice(0, 100)}`;
      last = null;
    } finally {
      await peer.release?.();
    }
  }
  return row;
}

/** Checks our auto-chosen kernel against a float64 product at a small size before timing anything. */
async function checkOurs(): Promise<void> {
  const N = 96;
  const rng = new nd.Rng(7);
  const a = nd.randn([N, N], rng);
  const b = nd.randn([N, N], rng);
  const c = nd.matmul(a, b);
  const [av, bv, cv] = [await a.data(), await b.data(), await c.data()];
  let worst = 0;
  for (let i = 0; i < N; i++) {
    for (let j = 0; j < N; j++) {
      let s = 0;
      for (let k = 0; k < N; k++) s += av[i * N + k] * bv[k * N + j];
      worst = Math.max(worst, Math.abs(s - cv[i * N + j]));
    }
  }
  for (const t of [a, b, c]) t.dispose();
  if (worst > 1e-3) throw new Error(`bench: our matmul is wrong (max abs error ${worst}); not timing it`);
}

export async function benchMatmul(sizes: number[], budgetMs: number, log: (s: string) => void): Promise<{ rows: MatmulRow[]; autoKind: MatmulKernelKind }> {
  await checkOurs();
  const autoKind = matmulKernelKind();
  const rows: MatmulRow[] = [];
  const kinds: MatmulKernelKind[] = [autoKind, ...(['blocked', 'tiled', 'generic'] as const).filter((k) => k !== autoKind)];
  for (const kind of kinds) {
    log(`matmul: nerfad ${kind}`);
    rows.push(await oursRow(kind, sizes, budgetMs, kind === autoKind));
  }
  for (const peer of [tfjsWasmMatmul, ...gpujsMatmul, plainJsMatmul]) {
    log(`matmul: ${peer.name}`);
    rows.push(await peerRow(peer, sizes, budgetMs));
  }
  return { rows, autoKind };
}
