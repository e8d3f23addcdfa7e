/**
 * `npm run bench [-- --json [FILE]] [-- --quick] [-- --only matmul,loads,elementwise,dispatch,training,mlp,hashgrid,nerf] [-- --fit-minutes M]`
 *
 * Prints, for the adapter in use: its FP32 ceiling (a pure-FMA kernel), matmul GFLOP/s for ours and the peers at
 * N = 256…2048, what a load costs in a kernel (and the matmul bound that follows), elementwise GB/s against a
 * buffer copy, dispatch overhead, a small MLP training step and the `autoFlushEvery` sweep, the hash backbone's
 * MLPs without gradients (matmul per layer vs mlpInfer), then a summary of the targets with pass/fail. `--json` writes the same figures to FILE
 * (default bench/results/bench-<time>.json). Timings are medians; on a shared machine they are noisy, so the
 * machine's load average is recorded beside them. Runs in a few minutes on lavapipe.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { dirname, join } from 'node:path';
import * as nd from '../src/index.ts';
import { describeGpu, getGpu, runtime } from '../src/index.ts';
import { measureCeiling, type CeilingResult } from './ceiling.ts';
import { benchMatmul, type MatmulRow } from './matmul.ts';
import { benchElementwise, type BandwidthRow } from './elementwise.ts';
import { benchDispatch, benchWaiting, type DispatchRow, type WaitRow } from './dispatch.ts';
import { benchAutoFlush, benchMlpStep, type FlushResult, type StepResult } from './training.ts';
import { benchHashGrid, benchHashGridTablePrecision } from './hashgrid.ts';
import { benchLoads, loadBoundMatmul } from './loads.ts';
import { benchMlpInference } from './mlp-inference.ts';
import { benchFitScene } from './nerf.ts';
import { median } from './timing.ts';
import { printTable, type Cell, type Table } from './report.ts';

interface Options {
  json: string | null;
  quick: boolean;
  only: Set<string> | null;
  /** Training budget of each fit-scene run (the 'nerf' section). */
  fitMinutes: number;
}

function parseArgs(argv: string[]): Options {
  const options: Options = { json: null, quick: false, only: null, fitMinutes: 1 };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--json') {
      const next = argv[i + 1];
      options.json = next && !next.startsWith('--') ? (i++, next) : join('bench', 'results', `bench-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
    } else if (arg === '--quick') options.quick = true;
    else if (arg === '--only') options.only = new Set((argv[++i] ?? '').split(','));
    else if (arg === '--fit-minutes') options.fitMinutes = Number(argv[++i]);
    else if (arg === '--help' || arg === '-h') {
      console.log('usage: npm run bench -- [--json [FILE]] [--quick] [--only matmul,loads,elementwise,dispatch,training,mlp,hashgrid,nerf] [--fit-minutes M]');
      process.exit(0);
    } else throw new Error(`bench: unknown argument ${arg}`);
  }
  return options;
}

interface Target {
  target: string;
  measured: string;
  verdict: 'pass' | 'FAIL' | 'info' | 'n/a';
}

async function main(): Promise<void> {
  const options = parseArgs(process.argv.slice(2));
  const wants = (section: string): boolean => !options.only || options.only.has(section);
  const started = performance.now();
  await nd.init();
  const gpu = await getGpu();
  const adapter = gpu.adapterName + (gpu.isSoftware ? ' [software]' : '');
  const log = (s: string): void => console.error(`[${((performance.now() - started) / 1000).toFixed(0).padStart(4)} s] ${s}`);
  console.log(`# nerfad bench — ${new Date().toISOString()}`);
  console.log(`adapter: ${describeGpu(gpu)}`);
  console.log(`host: ${cpus().length} × ${cpus()[0]?.model ?? '?'}, node ${process.version}, load average at start ${loadavg()[0].toFixed(2)}`);
  console.log('All figures are medians of several repetitions; a shared machine makes them noisy (compare rows of one run).');

  const tables: Table[] = [];
  const targets: Target[] = [];
  const record: Record<string, unknown> = {
    date: new Date().toISOString(),
    adapter: gpu.adapterName,
    isSoftware: gpu.isSoftware,
    adapterDescription: describeGpu(gpu),
    host: { cpus: cpus().length, model: cpus()[0]?.model, node: process.version, loadAverageAtStart: loadavg() },
  };
  const show = (table: Table): void => {
    tables.push(table);
    printTable(table, adapter);
  };

  // ---- ceiling + matmul
  const ceilings: CeilingResult[] = [];
  if (wants('matmul')) {
    log('ceiling (pure vec4 FMA kernel)');
    ceilings.push(await measureCeiling());
    const sizes = options.quick ? [256, 512] : [256, 512, 1024, 2048];
    const { rows, autoKind } = await benchMatmul(sizes, options.quick ? 1500 : 4000, log);
    log('ceiling again (the machine drifts)');
    ceilings.push(await measureCeiling());
    const mulAdd = await measureCeiling('mul-add');
    const ceiling = median(ceilings.flatMap((c) => c.timing.samples.map((ms) => (c.gflops * c.timing.ms) / ms)));
    const cpuCeiling = median(ceilings.map((c) => c.cpuGflops));
    show({
      title: 'FP32 ceiling of this adapter',
      note:
        'pure vec4 FMA kernel, 8 independent accumulators per thread, no loads; median over the runs before and after the matmul table.\n' +
        'per CPU-s = GFLOP per CPU-second this process used (all threads): other load on the machine barely moves it.',
      columns: ['kernel', 'GFLOP/s', 'GFLOP per CPU-s'],
      rows: [
        ['fma ceiling: fma(x, m, d) (the ceiling used below)', ceiling, cpuCeiling],
        ['same written x * m + d (a check: lavapipe may or may not contract it)', mulAdd.gflops, mulAdd.cpuGflops],
      ],
    });
    const fmt = (row: MatmulRow, N: number): Cell => row.gflops[N] ?? null;
    show({
      title: 'matmul GFLOP/s (2·N³/t), f32, N×N·N×N',
      note: `ours: auto choice on this adapter = '${autoKind}'. % = of the FMA ceiling. Skipped cells: see notes below.`,
      columns: ['implementation', ...sizes.map((N) => `N=${N}`), ...sizes.map((N) => `%ceil ${N}`), 'how timed'],
      rows: rows.map((row) => [
        row.name,
        ...sizes.map((N) => fmt(row, N)),
        ...sizes.map((N) => (row.gflops[N] ? (100 * row.gflops[N]!) / ceiling : null)),
        row.note,
      ]),
    });
    show({
      title: 'matmul GFLOP per CPU-second of this process (load-robust view of the same runs)',
      note: 'the same repetitions divided by CPU time instead of wall time; % = of the ceiling per CPU-second',
      columns: ['implementation', ...sizes.map((N) => `N=${N}`), ...sizes.map((N) => `%ceil ${N}`)],
      rows: rows.map((row) => [
        row.name,
        ...sizes.map((N) => row.cpuGflops[N] ?? null),
        ...sizes.map((N) => (row.cpuGflops[N] ? (100 * row.cpuGflops[N]!) / cpuCeiling : null)),
      ]),
    });
    const skips = rows.flatMap((row) => [...new Set(Object.values(row.skipped))].map((why) => `  ${row.name}: ${why}`));
    if (skips.length > 0) console.log(`not measured:\n${skips.join('\n')}`);
    record.ceiling = { gflops: ceiling, cpuGflops: cpuCeiling, runs: ceilings, mulAdd };
    record.matmul = { sizes, autoKind, rows };

    const ours = rows[0];
    const gpujsRows = rows.filter((r) => r.name.startsWith('gpu.js'));
    const tfjs = rows.find((r) => r.name === 'tfjs-wasm');
    for (const N of sizes.filter((s) => s >= 512)) {
      const g = ours.gflops[N];
      if (g == null) continue;
      targets.push({
        target: `matmul N=${N} ≥ 70% of the ceiling`,
        measured:
          `${g.toFixed(1)} GFLOP/s = ${((100 * g) / ceiling).toFixed(0)}% of ${ceiling.toFixed(1)}` +
          ` (per CPU-s: ${((100 * (ours.cpuGflops[N] ?? 0)) / cpuCeiling).toFixed(0)}%)`,
        verdict: g >= 0.7 * ceiling ? 'pass' : 'FAIL',
      });
      const peers = gpujsRows.filter((r) => r.gflops[N] != null);
      const bestPeer = peers.sort((a, b) => b.gflops[N]! - a.gflops[N]!)[0];
      targets.push({
        target: `matmul N=${N} ahead of every gpu.js mode`,
        measured: bestPeer ? `${g.toFixed(1)} vs best ${bestPeer.name} ${bestPeer.gflops[N]!.toFixed(1)}` : 'no gpu.js mode measured at this N',
        verdict: bestPeer ? (g > bestPeer.gflops[N]! ? 'pass' : 'FAIL') : 'n/a',
      });
      if (tfjs?.gflops[N] != null) {
        targets.push({
          target: `matmul N=${N} vs tfjs-wasm (as close as the ceiling allows)`,
          measured: `${g.toFixed(1)} vs ${tfjs.gflops[N]!.toFixed(1)} (${((100 * g) / tfjs.gflops[N]!).toFixed(0)}%)`,
          verdict: 'info',
        });
      }
    }
  }

  // ---- what a load costs, and the matmul bound that follows
  if (wants('loads')) {
    log('load cost');
    const rows = await benchLoads();
    const ceiling = median(ceilings.map((c) => c.gflops)) || (await measureCeiling()).gflops;
    const perLane = rows.find((r) => r.mode === 'storage-f32')!;
    const perLaneVec4 = rows.find((r) => r.mode === 'storage-vec4')!;
    show({
      title: 'loads inside a kernel: G floats/s for the whole adapter (every lane counted)',
      note:
        `against the FMA ceiling of ${ceiling.toFixed(1)} GFLOP/s = ${(ceiling / 2).toFixed(1)} G FMAs/s. On lavapipe a load at any address that is not a\n` +
        'compile-time constant is 8 bounds-checked scalar loads (one per lane), even when every lane reads the same address.',
      columns: ['load', 'G floats/s', 'FMAs per float at the ceiling', 'ms'],
      rows: rows.map((r) => [r.mode, r.gFloatsPerS, ceiling / 2 / r.gFloatsPerS, r.ms]),
    });
    record.loads = rows;
    if (gpu.isSoftware) {
      const bound = loadBoundMatmul(perLane.gFloatsPerS, perLaneVec4.gFloatsPerS, ceiling);
      const loadNs = 96 / perLane.gFloatsPerS + 128 / perLaneVec4.gFloatsPerS;
      targets.push({
        target: 'matmul ≥ 70% of the ceiling: what the loads allow (12 rows × 16 columns per thread)',
        measured:
          `per k an 8-lane workgroup loads 96 floats one by one and 128 as vec4s (${loadNs.toFixed(0)} ns at ${perLane.gFloatsPerS.toFixed(2)} / ${perLaneVec4.gFloatsPerS.toFixed(2)} G/s) ` +
          `for 1536 FMAs (${(1536 / (ceiling / 2)).toFixed(0)} ns at the ceiling): at most ${bound.toFixed(1)} GFLOP/s = ${((100 * bound) / ceiling).toFixed(0)}% before spills (rates of this run)`,
        verdict: 'info',
      });
    }
  }

  // ---- elementwise
  if (wants('elementwise')) {
    log('elementwise bandwidth');
    const rows: BandwidthRow[] = await benchElementwise(options.quick ? 1 << 22 : 1 << 24);
    show({
      title: `elementwise bandwidth, ${options.quick ? '4' : '16'} M f32`,
      note: 'GB/s = (bytes read + bytes written) / time; per CPU-s: the same bytes per CPU-second of this process (load-robust)',
      columns: ['kernel', 'GB/s', 'ms', 'GB per CPU-s'],
      rows: rows.map((r) => [r.name, r.gbPerS, r.ms, r.gbPerCpuS]),
    });
    record.elementwise = rows;
    // The bandwidth target is about memory-bound ops; sigmoid's exp makes it compute-bound on a CPU adapter.
    const vec4 = rows.filter((r) => r.name.includes('vec4') && !r.name.startsWith('sigmoid'));
    const worst = vec4.sort((a, b) => a.gbPerS - b.gbPerS)[0];
    if (worst) {
      targets.push({
        target: 'vec4 elementwise well above 6.7 GB/s (add, a·x+b)',
        measured: `slowest ${worst.gbPerS.toFixed(1)} GB/s (${worst.name}; ${worst.gbPerCpuS.toFixed(1)} per CPU-s)`,
        verdict: worst.gbPerS > 6.7 ? 'pass' : 'FAIL',
      });
    }
  }

  // ---- dispatch overhead
  if (wants('dispatch')) {
    log('dispatch overhead');
    const rows: DispatchRow[] = await benchDispatch(options.quick ? 500 : 2000);
    show({
      title: 'dispatch overhead (tiny kernel)',
      columns: ['mode', 'µs per dispatch'],
      rows: rows.map((r) => [r.mode, r.usPerDispatch]),
    });
    record.dispatch = rows;
    const waits: WaitRow[] = await benchWaiting(options.quick ? 50 : 200);
    show({
      title: 'waiting on queued GPU work (node main-thread CPU during the wait)',
      columns: ['mode', 'wall ms', 'main-thread CPU ms'],
      rows: waits.map((r) => [r.mode, r.wallMs, r.mainThreadMs ?? 'n/a']),
    });
    record.waiting = waits;
  }

  // ---- training step + autoFlushEvery
  if (wants('training')) {
    log('MLP training step');
    const batches = options.quick ? [1024, 4096] : [1024, 4096, 16384];
    const steps: StepResult[] = [];
    for (const batch of batches) steps.push(await benchMlpStep(batch));
    // The same step on the original 4×4-per-thread matmul kernel, for comparison.
    if (steps[0]?.matmul !== 'generic') steps.push(await benchMlpStep(4096, 7, 'generic'));
    show({
      title: 'MLP training step: 3→64→64→3, relu, MSE, forward + backward + SGD',
      columns: ['batch', 'matmul kernel', 'ms / step', 'dispatches / step', `autoFlushEvery`],
      rows: steps.map((s) => [s.batch, s.matmul, s.msPerStep, s.dispatchesPerStep, runtime().autoFlushEvery]),
    });
    const step4096 = steps.find((s) => s.batch === 4096);
    if (step4096) targets.push({ target: 'MLP step, batch 4096', measured: `${step4096.msPerStep.toFixed(2)} ms`, verdict: 'info' });

    log('autoFlushEvery sweep');
    const settings = [8, 16, 32, 64, 128, 256, Number.MAX_SAFE_INTEGER];
    const flush: FlushResult[] = await benchAutoFlush(batches, settings);
    const keys = settings.map((s) => (s >= Number.MAX_SAFE_INTEGER ? 'never' : String(s)));
    show({
      title: 'autoFlushEvery: ms per MLP step, submitting every F dispatches',
      note: `engine default: ${runtime().autoFlushEvery}; 'never' = only on read/flush (the ring of 1024 uniform slots still forces one)`,
      columns: ['batch', ...keys.map((k) => `F=${k}`), 'best'],
      rows: flush.map((f) => [f.batch, ...keys.map((k) => f.msPerStep[k] ?? null), f.best]),
    });
    record.training = { steps, autoFlush: flush, engineDefault: runtime().autoFlushEvery };
    const bests = flush.map((f) => `${f.batch}: ${f.best}`).join(', ');
    targets.push({ target: 'autoFlushEvery: best setting per batch', measured: bests, verdict: 'info' });
  }

  // ---- the hash backbone's MLPs without gradients (rendering, occupancy-grid queries)
  if (wants('mlp')) {
    log('MLP inference');
    const rows = await benchMlpInference(options.quick ? 1 << 15 : 145_760);
    show({
      title: `hash backbone MLPs without gradients, ${rows[0].rows} rows (a 128² frame's samples)`,
      columns: ['MLP', 'path', 'ms', 'GFLOP/s'],
      rows: rows.map((r) => [r.mlp, r.path, r.ms, r.gflops]),
    });
    record.mlpInference = rows;
    for (const mlp of [...new Set(rows.map((r) => r.mlp))]) {
      const [layers, fused] = rows.filter((r) => r.mlp === mlp);
      targets.push({ target: `MLP ${mlp} without gradients`, measured: `${fused.path}: ${fused.ms.toFixed(1)} ms vs ${layers.ms.toFixed(1)} ms (${(layers.ms / fused.ms).toFixed(1)}×)`, verdict: 'info' });
    }
  }

  // ---- hash-grid encoding
  if (wants('hashgrid')) {
    log('hash-grid encoding');
    const rows = await benchHashGrid(options.quick ? 1 << 13 : 1 << 15);
    const columns = ['grid', 'atomics', 'forward Mpoints/s', 'backward (table) Mpoints/s', 'backward (table + dL/dx) Mpoints/s', 'atomic adds M/s'];
    show({
      title: 'hash-grid encoding throughput (uniform points in the unit cube)',
      note: 'bound by table gathers and atomic adds, not FLOPs; backward = (forward + backward) − forward',
      columns,
      rows: rows.map((r) => columns.map((c) => r[c] ?? null)),
    });
    const precision = await benchHashGridTablePrecision(options.quick ? 1 << 14 : 1 << 17);
    const precisionColumns = ['grid', 'table', 'points', 'forward Mpoints/s', 'forward ms', 'CPU ms'];
    show({
      title: 'hash-grid forward for rendering: f32 table vs its f16 copy (uniform points)',
      note: 'lavapipe loads per lane and per 32-bit word: the f16 copy reads two features in one load; medians of interleaved rounds',
      columns: precisionColumns,
      rows: precision.map((r) => precisionColumns.map((c) => r[c] ?? null)),
    });
    record.hashgrid = rows;
    record.hashgridTablePrecision = precision;
  }

  // ---- fit-scene (NeRF building blocks, issue #3)
  if (wants('nerf')) {
    const minutes = options.quick ? Math.min(options.fitMinutes, 0.5) : options.fitMinutes;
    // The FMA ceiling just before and after the fits says how fast the (shared) machine ran meanwhile.
    const before = await measureCeiling();
    const rows = benchFitScene(minutes, ['hash', 'mlp'], log);
    const after = await measureCeiling();
    record.nerfCeilings = { before: before.gflops, after: after.gflops };
    show({
      title: `fit-scene: ${minutes} min of training per backbone (procedural scene, 50 train / 10 held-out views; MLP backbones: 2 held-out views, no 128² frame)`,
      note:
        'PSNR on held-out views; curve = held-out PSNR at "train seconds/steps"; render = one held-out frame, marched/sampled as in training;\n' +
        'the hash backbone renders from an f16 copy of its table ("f32 table": the same views and frame from the trained table; 128²: medians of 5, alternating).\n' +
        `FMA ceiling just before / after the fits: ${before.gflops.toFixed(1)} / ${after.gflops.toFixed(1)} GFLOP/s (a slower machine stretches every time here).`,
      columns: ['variant', 'held-out dB', 'dB (f32 table)', 'steps', 'train s', 'rays/s', 'render ms', 'frame', 'render 128² ms', '128² ms (f32 table)', 'dispatches/step', 'MB allocated', 'curve'],
      rows: rows.map((r) => [r.variant, r.heldoutPsnr, r.heldoutPsnrF32Table, r.steps, r.trainSeconds, r.raysPerSecond, r.renderMsPerFrame, r.frameSize, r.render128Ms, r.render128F32TableMs, r.dispatchesPerStep, r.bytesAllocated / 2 ** 20, r.curve]),
    });
    record.nerf = { minutes, rows };
    const hash = rows.find((r) => r.variant === 'hash');
    if (hash) {
      targets.push({
        target: 'fit-scene hash: ≥ 30 dB held-out in ≤ 5 min',
        measured: `${hash.heldoutPsnr.toFixed(2)} dB after ${hash.trainSeconds.toFixed(0)} s (${hash.steps} steps; --fit-minutes ${minutes})`,
        verdict: minutes >= 5 || hash.heldoutPsnr >= 30 ? (hash.heldoutPsnr >= 30 ? 'pass' : 'FAIL') : 'info',
      });
      if (hash.render128Ms !== null) {
        // The frame's cost follows the trained occupancy grid: after a short fit it still marches most of the box.
        const judged = minutes >= 5 || hash.render128Ms <= 200;
        targets.push({
          target: 'fit-scene hash: render 128×128 in ≤ 200 ms',
          measured: `${hash.render128Ms.toFixed(0)} ms${judged ? '' : ` (after ${minutes} min the occupancy grid is still coarse: judge with --fit-minutes 5)`}`,
          verdict: judged ? (hash.render128Ms <= 200 ? 'pass' : 'FAIL') : 'info',
        });
      }
    }
  }

  show({
    title: 'summary: targets (engine issues #2, #3)',
    columns: ['target', 'measured', 'verdict'],
    rows: targets.map((t) => [t.target, t.measured, t.verdict]),
  });
  record.summary = targets;
  record.loadAverageAtEnd = loadavg();
  record.seconds = (performance.now() - started) / 1000;
  console.log(`\nload average at end ${loadavg()[0].toFixed(2)}; ${(record.seconds as number).toFixed(0)} s`);
  if (options.json) {
    mkdirSync(dirname(options.json), { recursive: true });
    writeFileSync(options.json, JSON.stringify({ ...record, tables }, null, 2));
    console.log(`wrote ${options.json}`);
  }
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    console.error(error);
    process.exit(1);
  },
);
