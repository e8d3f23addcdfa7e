/**
 * Hash-grid throughput: points/s of the forward and of the backward into the table, for a RAD-NeRF-size 3-D grid
 * (16 levels × 2 features, base 16, 2^16 entries per level, finest resolution 2048) and an ER-NeRF tri-plane (three
 * 2-D grids of 12 levels × 1 feature, base 64, 2^14, finest 512), in both atomics modes, plus the backward with
 * dL/dx as well. Points are uniform in the unit cube (seeded).
 *
 * Method: `reps` forwards (under noGrad) are queued and awaited once (`runtime().sync()`); then `reps` forward +
 * backward steps; backward time = (forward + backward) − forward, each the median of `rounds` interleaved rounds
 * (the machine may be shared). The backward includes clearing the gradient table (and the fixed-point → f32 pass in
 * that mode) and copying dL/dy. One warm-up step before timing compiles the pipelines.
 * The hash grid is bound by table gathers and atomics, not FLOPs: `atomic adds/s` (N · L · 2^D · F per backward)
 * compares with the scatter-add rates measured in lavapipe-notes.md (fixed-point 68–96 M/s, CAS 28–109 M/s).
 *
 * Rendering forward, f32 table vs its f16 copy (`hashGridF16`, two features per 32-bit load): the forward alone,
 * interleaved rounds, wall and process CPU time (lavapipe's workers run in this process), for fit-scene's grid.
 *
 * Run alone: `npx tsx bench/hashgrid.ts [points]`.
 */
import { pathToFileURL } from 'node:url';
import * as nd from '../src/index.ts';
import { hashGrid, hashGridF16, hashGridPackF16, hashGridTable, triPlane } from '../src/ops/encoding.ts';
import type { HashGridConfig } from '../src/kernels/encoding/hashgrid-layout.ts';
import type { AtomicMode } from '../src/kernels/common/atomics.ts';
import { getGpu } from '../src/kernels/runtime/gpu.ts';

export type BenchRow = Record<string, string | number>;

export const RAD_NERF_GRID: HashGridConfig = { dims: 3, features: 2, levels: 16, log2TableSize: 16, baseResolution: 16, maxResolution: 2048 };
export const ER_NERF_PLANE: HashGridConfig = {
  dims: 2,
  features: 1,
  levels: 12,
  log2TableSize: 14,
  baseResolution: 64,
  maxResolution: 512,
  alignCorners: true,
};

async function timeIt(reps: number, step: () => void): Promise<number> {
  const rt = nd.runtime();
  await rt.sync();
  const start = performance.now();
  for (let i = 0; i < reps; i++) step();
  await rt.sync();
  return (performance.now() - start) / 1000 / reps;
}

interface Case {
  name: string;
  config: HashGridConfig;
  planes: number;
}

const median = (values: number[]): number => [...values].sort((a, b) => a - b)[values.length >> 1];

async function benchCase(c: Case, atomics: AtomicMode, points: number, reps: number, rounds: number, adapter: string): Promise<BenchRow> {
  const config: HashGridConfig = { ...c.config, atomics };
  const rng = new nd.Rng(7);
  const x = nd.keep(nd.rand([points, c.planes === 3 ? 3 : config.dims], rng));
  const tables = Array.from({ length: c.planes }, () => {
    const t = nd.keep(hashGridTable(config, rng));
    t.requiresGrad = true;
    return t;
  });
  const width = config.levels * config.features * c.planes;
  const dy = nd.keep(nd.randn([points, width], rng, 1e-3));
  const encode = (): nd.Tensor => (c.planes === 3 ? triPlane(x, tables[0], tables[1], tables[2], config) : hashGrid(x, tables[0], config));
  const forward = (): void => nd.noGrad(() => nd.scope(() => void encode()));
  const forwardBackward = (): void =>
    nd.scope(() => {
      nd.backward(encode(), dy);
      for (const t of tables) {
        t.grad?.dispose();
        t.grad = null;
      }
    });

  const forwardBackwardWithInput = (): void => {
    x.requiresGrad = true;
    forwardBackward();
    x.requiresGrad = false;
    x.grad?.dispose();
    x.grad = null;
  };

  forward();
  forwardBackward();
  forwardBackwardWithInput();
  const samples: { forward: number[]; both: number[]; withInput: number[] } = { forward: [], both: [], withInput: [] };
  for (let round = 0; round < rounds; round++) {
    samples.forward.push(await timeIt(reps, forward));
    samples.both.push(await timeIt(reps, forwardBackward));
    samples.withInput.push(await timeIt(reps, forwardBackwardWithInput));
  }
  const tForward = median(samples.forward);
  const tBoth = median(samples.both);
  const tWithInput = median(samples.withInput);
  const tBackward = Math.max(tBoth - tForward, 1e-9);
  const atomicAdds = points * config.levels * 2 ** config.dims * config.features * c.planes;
  for (const t of [x, dy, ...tables]) t.dispose();
  return {
    grid: c.name,
    atomics,
    points,
    'forward Mpoints/s': +(points / tForward / 1e6).toFixed(3),
    'backward (table) Mpoints/s': +(points / tBackward / 1e6).toFixed(3),
    'backward (table + dL/dx) Mpoints/s': +(points / Math.max(tWithInput - tForward, 1e-9) / 1e6).toFixed(3),
    'atomic adds M/s': +(atomicAdds / tBackward / 1e6).toFixed(1),
    'forward ms': +(tForward * 1000).toFixed(2),
    'backward ms': +(tBackward * 1000).toFixed(2),
    adapter,
  };
}

/** Points/s forward and backward for a RAD-NeRF 3-D grid and an ER-NeRF tri-plane, in both atomics modes. */
export async function benchHashGrid(points = 1 << 15, reps = 2, rounds = 3): Promise<BenchRow[]> {
  await nd.init();
  const adapter = (await getGpu()).adapterName;
  const cases: Case[] = [
    { name: 'RAD-NeRF 3-D grid (16 lv × 2 ft, 2^16, res 16→2048)', config: RAD_NERF_GRID, planes: 1 },
    { name: 'ER-NeRF tri-plane (3 × 12 lv × 1 ft, 2^14, res 64→512)', config: ER_NERF_PLANE, planes: 3 },
  ];
  const rows: BenchRow[] = [];
  for (const c of cases) for (const atomics of ['fixed-point', 'float-cas'] as const) rows.push(await benchCase(c, atomics, points, reps, rounds, adapter));
  return rows;
}

/** fit-scene's hash backbone grid (experiments/fit-scene.ts). */
export const FIT_SCENE_GRID: HashGridConfig = { dims: 3, features: 2, levels: 16, log2TableSize: 17, baseResolution: 16, maxResolution: 512 };

/** The forward on the f32 table and on its f16 copy: medians of interleaved rounds, wall and CPU ms per forward. */
export async function benchHashGridTablePrecision(points = 1 << 17, reps = 3, rounds = 7): Promise<BenchRow[]> {
  await nd.init();
  const adapter = (await getGpu()).adapterName;
  const rng = new nd.Rng(9);
  const config = FIT_SCENE_GRID;
  const x = nd.keep(nd.rand([points, 3], rng));
  const table = nd.keep(hashGridTable(config, rng, 1));
  const packed = nd.keep(nd.noGrad(() => hashGridPackF16(table, config)));
  const variants = {
    f32: () => nd.noGrad(() => nd.scope(() => void hashGrid(x, table, config))),
    f16: () => nd.noGrad(() => nd.scope(() => void hashGridF16(x, packed, config))),
  };
  const wall: Record<string, number[]> = { f32: [], f16: [] };
  const cpu: Record<string, number[]> = { f32: [], f16: [] };
  for (const run of Object.values(variants)) run();
  for (let round = 0; round < rounds; round++) {
    for (const [name, run] of Object.entries(variants)) {
      const before = process.cpuUsage();
      wall[name].push(await timeIt(reps, run));
      const used = process.cpuUsage(before);
      cpu[name].push((used.user + used.system) / 1e6 / reps);
    }
  }
  for (const t of [x, table, packed]) t.dispose();
  return Object.keys(variants).map((name) => ({
    grid: 'fit-scene 3-D grid (16 lv × 2 ft, 2^17, res 16→512)',
    table: name,
    points,
    'forward Mpoints/s': +(points / median(wall[name]) / 1e6).toFixed(3),
    'forward ms': +(median(wall[name]) * 1000).toFixed(1),
    'CPU ms': +(median(cpu[name]) * 1000).toFixed(1),
    adapter,
  }));
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const points = Number(process.argv[2] ?? 1 << 15);
  console.table(await benchHashGrid(points));
  console.table(await benchHashGridTablePrecision());
  process.exit(0);
}
