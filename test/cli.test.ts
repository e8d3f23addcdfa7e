import { existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PNG } from 'pngjs';
import { afterAll, describe, expect, it } from 'vitest';
import { defineExperiment, parseAssignments, parseConfigValue, resolveConfig } from '../src/cli/experiment.ts';
import { loadExperiment } from '../src/cli/load.ts';
import { main } from '../src/cli/main.ts';
import { PALETTE, formatTick, linePlotPng, logTicks, niceTicks } from '../src/cli/plot.ts';
import { Progress } from '../src/cli/progress.ts';
import { readCheckpoint, recordPoint, writeCheckpoint, type MetricsFile } from '../src/cli/run-dir.ts';
import { runExperiment, type RunConfigFile } from '../src/cli/run.ts';
import * as nd from '../src/index.ts';
import linearFit from './cli-fixtures/linear-fit.ts';

const FIXTURE = 'test/cli-fixtures/linear-fit.ts';
const scratch = mkdtempSync(join(tmpdir(), 'nerfad-cli-test-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

const readJson = <T>(path: string): T => JSON.parse(readFileSync(path, 'utf8')) as T;
const decodePng = (path: string): PNG => PNG.sync.read(readFileSync(path));

function collector(): { write: (t: string) => void; text: () => string } {
  const chunks: string[] = [];
  return { write: (t) => void chunks.push(t), text: () => chunks.join('') };
}

describe('config: --set parsing', () => {
  const config = linearFit.config;

  it('parses each value by the type of its default', () => {
    expect(parseConfigValue('0.25', 1, 'lr')).toBe(0.25);
    expect(parseConfigValue('1e-3', 1, 'lr')).toBe(0.001);
    expect(parseConfigValue('yes', false, 'verbose')).toBe(true);
    expect(parseConfigValue('0', true, 'verbose')).toBe(false);
    expect(parseConfigValue('12', 'x', 'label')).toBe('12'); // a string stays a string
    expect(parseConfigValue('4, 5', [1, 2], 'dims')).toEqual([4, 5]);
    expect(parseConfigValue('a,b', ['x'], 'names')).toEqual(['a', 'b']);
    expect(parseAssignments(config, ['lr=0.5', 'model.scale=3', 'label=a=b'])).toEqual({ lr: 0.5, model: { scale: 3 }, label: 'a=b' });
  });

  it('rejects unknown keys (listing the valid ones), bad values and malformed assignments', () => {
    expect(() => parseAssignments(config, ['lrr=1'])).toThrow(/unknown config key 'lrr'.*Valid keys: steps \(number\), lr \(number\)/);
    expect(() => parseAssignments(config, ['model.width=1'])).toThrow(/unknown config key 'model.width'.*model\.scale \(number\)/);
    expect(() => parseAssignments(config, ['lr=fast'])).toThrow(/--set lr=fast: 'fast' is not a number/);
    expect(() => parseAssignments(config, ['steps='])).toThrow(/is not a number/);
    expect(() => parseAssignments(config, ['verbose=maybe'])).toThrow(/not a boolean/);
    expect(() => parseAssignments(config, ['dims=1,x'])).toThrow(/'x' is not a number/);
    expect(() => parseAssignments(config, ['model=3'])).toThrow(/is an object; set one of its keys/);
    expect(() => parseAssignments(config, ['lr'])).toThrow(/expected key=value/);
  });
});

describe('config: variants', () => {
  it('applies defaults, then the variant, then --set', () => {
    expect(resolveConfig(linearFit, null)).toEqual(linearFit.config);
    const long = resolveConfig(linearFit, 'long', ['lr=0.05']);
    expect(long).toEqual({ ...linearFit.config, steps: 12, lr: 0.05, model: { scale: 2 } });
    expect(linearFit.config.steps).toBe(6); // the defaults are not mutated
    expect(resolveConfig(linearFit, 'long', ['model.scale=5']).model).toEqual({ scale: 5 });
  });

  it('names the valid variants when one does not exist', () => {
    expect(() => resolveConfig(linearFit, 'slow')).toThrow("experiment 'linear-fit' has no variant 'slow'; valid variants: fast, long");
  });

  it('checks variants against the config when the experiment is defined', () => {
    const base = { name: 'x', description: '', run: async () => {} };
    expect(() => defineExperiment({ ...base, config: { lr: 1 }, variants: { bad: { lrr: 2 } as never } })).toThrow(/variant 'bad': unknown config key 'lrr'/);
    expect(() => defineExperiment({ ...base, config: { lr: 1 }, variants: { bad: { lr: 'high' } as never } })).toThrow(/'lr' is a number, got "high"/);
    expect(() => defineExperiment({ ...base, name: 'has space', config: {} })).toThrow(/name 'has space'/);
  });
});

describe('plots', () => {
  it('renders a PNG of the requested size that decodes, with the series drawn in its colour', () => {
    const x = Array.from({ length: 50 }, (_, i) => i + 1);
    const png = PNG.sync.read(
      linePlotPng({ width: 640, height: 360, title: 'loss', xLabel: 'step', logY: true, series: [{ name: 'loss', x, y: x.map((s) => 1 / s) }] }),
    );
    expect([png.width, png.height]).toEqual([640, 360]);
    const [r, g, b] = PALETTE[0];
    let coloured = 0;
    for (let p = 0; p < png.width * png.height; p++) {
      if (png.data[p * 4] === r && png.data[p * 4 + 1] === g && png.data[p * 4 + 2] === b) coloured++;
    }
    expect(coloured).toBeGreaterThan(100); // the curve (and its legend swatch)
  });

  it('survives empty, constant, single-point and non-positive-on-log series', () => {
    for (const series of [[], [{ name: 'a', x: [1], y: [2] }], [{ name: 'a', x: [1, 2, 3], y: [5, 5, 5] }], [{ name: 'a', x: [1, 2], y: [0, -1] }]]) {
      const png = PNG.sync.read(linePlotPng({ width: 200, height: 120, series, logY: true }));
      expect(png.width).toBe(200);
    }
  });

  it('chooses readable ticks', () => {
    expect(niceTicks(0, 1000, 5)).toEqual([0, 200, 400, 600, 800, 1000]);
    expect(niceTicks(0.013, 0.061, 5)).toEqual([0.02, 0.03, 0.04, 0.05, 0.06]);
    expect(logTicks(-4, 0)).toEqual([-4, -3, -2, -1, 0]);
    expect(formatTick(0.02, 0.01)).toBe('0.02');
    expect(formatTick(250000, 50000)).toBe('2.5e5');
    expect(formatTick(1500, 500)).toBe('1500');
  });
});

describe('progress', () => {
  it('prints plain lines every 10% with steps/s and ETA when not on a terminal', () => {
    let now = 0;
    const out = collector();
    const progress = new Progress({ label: 'x', total: 100, isTTY: false, write: out.write, now: () => now });
    for (let step = 1; step <= 100; step++) {
      now += 50; // 20 steps/s
      progress.update(step, `loss ${1 / step}`);
    }
    progress.finish();
    const lines = out.text().trim().split('\n');
    expect(lines).toHaveLength(10);
    expect(lines[0]).toBe('x step  10/100   10%  20.0 steps/s  ETA 0:05  loss 0.1');
    expect(lines[9]).toMatch(/step 100\/100  100%  20\.0 steps\/s  took 0:05/);
  });

  it('continues a resumed run at the next 10% mark, with the rate of this session', () => {
    let now = 0;
    const out = collector();
    const progress = new Progress({ label: 'x', total: 100, startStep: 50, isTTY: false, write: out.write, now: () => now });
    for (let step = 51; step <= 60; step++) {
      now += 100;
      progress.update(step);
    }
    expect(out.text()).toBe('x step  60/100   60%  10.0 steps/s  ETA 0:04\n');
  });

  it('redraws one line with a bar on a terminal', () => {
    let now = 0;
    const out = collector();
    const progress = new Progress({ label: 'x', total: 4, isTTY: true, write: out.write, now: () => now });
    for (let step = 1; step <= 4; step++) {
      now += 500;
      progress.update(step);
    }
    progress.log('a message');
    progress.finish();
    expect(out.text()).toContain('\r\x1b[Kx [');
    expect(out.text()).toContain('4/4  100%');
    expect(out.text()).toContain('\r\x1b[Ka message\n');
  });
});

describe('run directories', () => {
  it('writes config.json, metrics.json, run.log and plots after a short run', async () => {
    const out = join(scratch, 'short');
    const console_ = collector();
    const result = await runExperiment(linearFit, { out, variant: 'fast', set: ['steps=5'], experimentFile: FIXTURE, write: console_.write });
    expect(result.status).toBe('completed');

    const config = readJson<RunConfigFile>(join(out, 'config.json'));
    expect(config.experiment).toBe('linear-fit');
    expect(config.variant).toBe('fast');
    expect(config.config).toMatchObject({ steps: 5, lr: 0.3 });
    expect(config.overrides).toEqual(['steps=5']);
    expect(config.adapter).toBe(nd.runtime().gpu.adapterName);
    expect(config.git.commit).toMatch(/^[0-9a-f]{40}$/);
    expect(config.experimentFile).toBe(FIXTURE);

    const metrics = readJson<MetricsFile>(join(out, 'metrics.json'));
    expect(metrics.status).toBe('completed');
    expect(metrics.step).toBe(5);
    expect(metrics.series.loss.step).toEqual([1, 2, 3, 4, 5]);
    expect(metrics.series.loss.value[4]).toBeLessThan(metrics.series.loss.value[0]);
    expect(metrics.series.lr.value).toEqual([0.3, 0.3, 0.3, 0.3, 0.3]);
    expect(typeof metrics.summary.w0).toBe('number');

    const log = readFileSync(join(out, 'run.log'), 'utf8');
    expect(log).toContain('running linear-fit (variant fast)');
    expect(log).toContain('checkpoint at step 3');
    expect(log).toMatch(/completed: w0 /);

    const lossPlot = decodePng(join(out, 'plots', 'loss.png'));
    expect([lossPlot.width, lossPlot.height]).toEqual([800, 480]);
    expect(existsSync(join(out, 'plots', 'lr.png'))).toBe(true);
    expect(console_.text()).toMatch(/linear-fit step 5\/5  100%/);
    expect(console_.text()).toContain(`wrote ${out}/`);
  });

  it('refuses to write into a non-empty directory, and a run of another experiment on --resume', async () => {
    const out = join(scratch, 'short');
    await expect(runExperiment(linearFit, { out, quiet: true })).rejects.toThrow(/is not empty; choose another directory or continue that run with --resume/);
    const other = defineExperiment({ ...linearFit, name: 'other' });
    await expect(runExperiment(other, { resume: out, quiet: true })).rejects.toThrow(/that run is of experiment 'linear-fit', not 'other'/);
    await expect(runExperiment(linearFit, { resume: out, variant: 'long', quiet: true })).rejects.toThrow(/used variant 'fast', not 'long'/);
  });

  it('resumes a crashed run from its checkpoint and ends where an uninterrupted run ends', async () => {
    const straight = await runExperiment(linearFit, { out: join(scratch, 'straight'), quiet: true });

    const out = join(scratch, 'crashed');
    await expect(runExperiment(linearFit, { out, set: ['failAt=4'], quiet: true })).rejects.toThrow(/simulated crash after step 4/);
    const failed = readJson<MetricsFile>(join(out, 'metrics.json'));
    expect(failed.status).toBe('failed');
    expect(failed.series.loss.step).toEqual([1, 2, 3, 4]);
    expect(failed.error).toContain('simulated crash');

    const resumed = await runExperiment(linearFit, { resume: out, set: ['failAt=0'], quiet: true });
    expect(resumed.status).toBe('completed');
    expect(resumed.metrics.summary.resumedFrom).toBe(3);
    // Steps 4.. were recomputed from the checkpoint at 3: no duplicates, and the same numbers as without the crash.
    expect(resumed.metrics.series.loss.step).toEqual([1, 2, 3, 4, 5, 6]);
    expect(resumed.metrics.series.loss.value).toEqual(straight.metrics.series.loss.value);
    expect(resumed.metrics.summary.w0).toBe(straight.metrics.summary.w0);
    const config = readJson<RunConfigFile>(join(out, 'config.json'));
    expect(config.resumedAt).toHaveLength(1);
    expect(config.overrides).toEqual(['failAt=4', 'failAt=0']);
    expect(readFileSync(join(out, 'run.log'), 'utf8')).toContain('resumed from the checkpoint at step 3');
  });

  it('stops at Ctrl-C after a checkpoint, and says how to continue', async () => {
    const out = join(scratch, 'interrupted');
    const console_ = collector();
    const listeners = process.listenerCount('SIGINT');
    const result = await runExperiment(linearFit, { out, set: ['interruptAt=2'], experimentFile: FIXTURE, write: console_.write });
    expect(result.status).toBe('stopped');
    expect(result.metrics.series.loss.step).toEqual([1, 2]);
    expect(process.listenerCount('SIGINT')).toBe(listeners); // the handler is gone with the run
    expect(console_.text()).toContain('stop requested (Ctrl-C)');
    expect(console_.text()).toContain(`continue with: nerfad run ${FIXTURE} --resume ${out}`);
    const resumed = await runExperiment(linearFit, { resume: out, set: ['interruptAt=0'], quiet: true });
    expect(resumed.metrics.summary.resumedFrom).toBe(2);
    expect(resumed.metrics.series.loss.step).toEqual([1, 2, 3, 4, 5, 6]);
  });

  it('writes checkpoints atomically: a crash between the folder renames leaves the previous one readable', async () => {
    const dir = join(scratch, 'atomic');
    mkdirSync(dir);
    const t = nd.keep(nd.tensor([1, 2, 3, 4], [2, 2]));
    await writeCheckpoint(dir, { step: 7, tensors: { t }, data: { k: 1 } });
    expect(existsSync(join(dir, 'checkpoint.partial'))).toBe(false);
    renameSync(join(dir, 'checkpoint'), join(dir, 'checkpoint.previous')); // as if the process died mid-swap
    const into = nd.keep(nd.zeros([2, 2]));
    const loaded = await readCheckpoint(dir, { tensors: { t: into } });
    expect(loaded).toMatchObject({ step: 7, data: { k: 1 }, metadata: { step: '7' } });
    expect([...(await into.data())]).toEqual([1, 2, 3, 4]);
    await expect(readCheckpoint(dir, { tensors: { u: into } })).rejects.toThrow(/tensor 'u' is missing[\s\S]*unexpected tensors 't'/);
    await expect(readCheckpoint(dir, { tensors: { t: nd.keep(nd.zeros([4])) } })).rejects.toThrow(/tensor 't' is F32 \[2, 2\] in the file, expected F32 \[4\]/);
    expect(await readCheckpoint(join(scratch, 'short-nothing'))).toBeNull();
    t.dispose();
    into.dispose();
  });

  it('resumes a model and its Adam state bit for bit', async () => {
    const build = () => {
      const net = new nd.MLP([3, 8, 1], { rng: new nd.Rng(5) });
      return { net, adam: new nd.Adam(net.parameters(), { lr: 0.05 }) };
    };
    const x = nd.keep(nd.randn([16, 3], new nd.Rng(6)));
    const train = (m: ReturnType<typeof build>, steps: number) => {
      for (let k = 0; k < steps; k++) {
        nd.scope(() => {
          nd.backward(nd.mean(nd.square(m.net.forward(x))));
          m.adam.step();
          m.adam.zeroGrad();
        });
      }
    };
    const dir = join(scratch, 'adam');
    mkdirSync(dir);
    const a = build();
    train(a, 3);
    await writeCheckpoint(dir, { step: 3, model: a.net, optimizer: a.adam });
    train(a, 2);
    const b = build();
    expect((await readCheckpoint(dir, { model: b.net, optimizer: b.adam }))?.step).toBe(3);
    train(b, 2);
    for (const [pa, pb] of a.net.parameters().map((p, k) => [p, b.net.parameters()[k]])) {
      expect([...(await pb.data())]).toEqual([...(await pa.data())]);
    }
    for (const m of [a, b]) {
      m.adam.dispose();
      m.net.dispose();
    }
    x.dispose();
  });

  it('keeps series consistent when a step is recorded again', () => {
    const s = { step: [1, 2, 3, 4], value: [1, 2, 3, 4] };
    recordPoint(s, 3, 30);
    expect(s).toEqual({ step: [1, 2, 3], value: [1, 2, 30] });
  });
});

describe('the nerfad command', () => {
  async function cli(...args: string[]): Promise<{ code: number; out: string; err: string }> {
    const out = collector();
    const err = collector();
    const code = await main(args, { out: out.write, err: err.write });
    return { code, out: out.text(), err: err.text() };
  }

  it('lists its commands', async () => {
    const { code, out } = await cli('--help');
    expect(code).toBe(0);
    expect(out).toMatch(/nerfad run \[experiment\]/);
    expect(out).toMatch(/nerfad list/);
  });

  it('runs an experiment file with --variant, --set and --out', async () => {
    const out = join(scratch, 'cli-run');
    const { code, out: text, err } = await cli('run', FIXTURE, '--variant', 'long', '--set', 'steps=4', '--set', 'lr=0.2', '--out', out);
    expect(err).toBe('');
    expect(code).toBe(0);
    expect(text).toContain('running linear-fit (variant long)');
    expect(readJson<RunConfigFile>(join(out, 'config.json')).config).toMatchObject({ steps: 4, lr: 0.2, model: { scale: 2 } });
    // --resume alone finds the experiment file in config.json; the run continues from its checkpoint at step 3.
    const resumed = await cli('run', '--resume', out, '--set', 'steps=6');
    expect(resumed.err).toBe('');
    expect(resumed.out).toContain('resumed from the checkpoint at step 3');
    expect(readJson<MetricsFile>(join(out, 'metrics.json')).series.loss.step).toEqual([1, 2, 3, 4, 5, 6]);
  });

  it('reports bad variants, unknown keys and missing files clearly', async () => {
    let r = await cli('run', FIXTURE, '--variant', 'nope', '--out', join(scratch, 'never'));
    expect(r.code).toBe(1);
    expect(r.err).toContain("has no variant 'nope'; valid variants: fast, long");
    r = await cli('config', FIXTURE, '--set', 'width=3');
    expect(r.code).toBe(1);
    expect(r.err).toContain("unknown config key 'width'");
    r = await cli('run', 'experiments/nope.ts');
    expect(r.err).toContain("experiment file 'experiments/nope.ts' not found");
    r = await cli('frobnicate');
    expect(r.code).toBe(1);
  });

  it('prints a resolved config and lists experiments with descriptions', async () => {
    const r = await cli('config', FIXTURE, '--variant', 'fast');
    expect(r.out).toContain('lr = 0.3  (number)');
    expect(r.out).toContain('model.scale = 1  (number)');
    const list = await cli('list', 'test/cli-fixtures');
    expect(list.code).toBe(0);
    expect(list.out).toMatch(/linear-fit\s+test\/cli-fixtures\/linear-fit\.ts\s+gradient descent .* \[variants: fast, long\]/);
    const loaded = await loadExperiment(FIXTURE);
    expect(loaded.name).toBe('linear-fit');
  });
});

describe('experiments/fit-image.ts', () => {
  it('trains, writing the target, the reconstruction and PSNR per logged step', async () => {
    const fitImage = await loadExperiment('experiments/fit-image.ts');
    const out = join(scratch, 'fit-image');
    const result = await runExperiment(fitImage, { out, set: ['size=16', 'steps=12', 'logEvery=5', 'snapshotEvery=0'], quiet: true });
    expect(result.status).toBe('completed');
    for (const file of ['target.png', 'reconstruction.png']) expect(decodePng(join(out, file)).width).toBe(16);
    const comparison = decodePng(join(out, 'comparison.png')); // 16 + 2 + 16 pixels wide, enlarged 16× to 256 high
    expect([comparison.width, comparison.height]).toEqual([34 * 16, 256]);
    const { series, summary } = readJson<MetricsFile>(join(out, 'metrics.json'));
    expect(series.psnr.step).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]); // every step, read back in batches
    series.psnr.value.forEach((p, i) => expect(p).toBeCloseTo(-10 * Math.log10(series.loss.value[i]), 4));
    expect(series.loss.value[11]).toBeLessThan(series.loss.value[0]);
    // The same run reading back after every step records the same losses (each one lands in the right slot).
    const everyStep = await runExperiment(fitImage, { out: join(scratch, 'fit-image-1'), set: ['size=16', 'steps=12', 'logEvery=1', 'snapshotEvery=0'], quiet: true });
    expect(everyStep.metrics.series.loss.value).toEqual(series.loss.value);
    expect(summary.psnr).toBeGreaterThan(5);
    expect(existsSync(join(out, 'plots', 'psnr.png'))).toBe(true);
  });
});
