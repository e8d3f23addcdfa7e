/**
 * Runs one experiment into a run directory (see run-dir.ts for its files): resolves the config, opens the GPU,
 * gives the experiment its context (logging, metrics, progress, checkpoints), and writes metrics.json and the plots
 * at every checkpoint and at the end — also when the experiment fails or is stopped with Ctrl-C.
 */
import { execFileSync } from 'node:child_process';
import { appendFileSync, existsSync, mkdirSync, readdirSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { initRuntime } from '../kernels/runtime/runtime.ts';
import {
  applyPartial,
  parseAssignments,
  resolveConfig,
  type ConfigObject,
  type Experiment,
  type ExperimentContext,
  type PlotSpec,
} from './experiment.ts';
import { writeLinePlot } from './plot.ts';
import { Progress, formatValue } from './progress.ts';
import {
  checkpointStep,
  readCheckpoint,
  readJson,
  recordPoint,
  truncateSeries,
  writeCheckpoint,
  writeJsonAtomic,
  type MetricsFile,
  type RunStatus,
} from './run-dir.ts';

export interface RunOptions {
  variant?: string | null;
  /** `key=value` config assignments. */
  set?: readonly string[];
  /** The run directory (default runs/NAME/<timestamp>[_variant]). */
  out?: string;
  /** A run directory to continue: its config.json is reused (`set` may still override keys). */
  resume?: string;
  /** The experiment's file, recorded in config.json. */
  experimentFile?: string;
  /** Where default run directories go (default ./runs). */
  runsRoot?: string;
  /** Console output (default process.stdout) and whether it is a terminal. */
  write?: (text: string) => void;
  isTTY?: boolean;
  /** Nothing on the console (files are still written). */
  quiet?: boolean;
}

export interface RunResult {
  outDir: string;
  status: RunStatus;
  metrics: MetricsFile;
}

export interface RunConfigFile {
  experiment: string;
  description: string;
  experimentFile: string | null;
  variant: string | null;
  config: ConfigObject;
  /** `--set` assignments as given (the config above already includes them). */
  overrides: string[];
  adapter: string;
  git: { commit: string | null; dirty: boolean | null };
  node: string;
  startedAt: string;
  resumedAt: string[];
}

function gitInfo(cwd: string): { commit: string | null; dirty: boolean | null } {
  try {
    const commit = execFileSync('git', ['rev-parse', 'HEAD'], { cwd, stdio: ['ignore', 'pipe', 'ignore'] }).toString().trim();
    const status = execFileSync('git', ['status', '--porcelain', '--untracked-files=no'], { cwd, stdio: ['ignore', 'pipe', 'ignore'] }).toString();
    return { commit, dirty: status.trim().length > 0 };
  } catch {
    return { commit: null, dirty: null };
  }
}

function timestamp(date = new Date()): string {
  return date.toISOString().replace(/\.\d+Z$/, '').replace(/:/g, '-');
}

function defaultRunDir(root: string, name: string, variant: string | null): string {
  const base = join(root, name, `${timestamp()}${variant ? `_${variant}` : ''}`);
  let dir = base;
  for (let k = 2; existsSync(dir); k++) dir = `${base}-${k}`;
  return dir;
}

/** Default plots: every metric with "loss" in its name on one log-scale plot, each other metric on its own. */
export function defaultPlots(names: readonly string[]): PlotSpec[] {
  const losses = names.filter((n) => /loss/i.test(n));
  const plots: PlotSpec[] = [];
  if (losses.length > 0) plots.push({ name: 'loss', title: 'loss', series: losses, logY: true });
  for (const n of names) if (!losses.includes(n)) plots.push({ name: n.replace(/[^a-z0-9._-]/gi, '_'), title: n, series: [n] });
  return plots;
}

/** Writes plots/*.png for the recorded series. Returns the files written. */
export function writePlots(outDir: string, metrics: MetricsFile, specs: readonly PlotSpec[] | undefined): string[] {
  const names = Object.keys(metrics.series).filter((n) => metrics.series[n].step.length > 0);
  const files: string[] = [];
  for (const spec of specs ?? defaultPlots(names)) {
    const series = spec.series.filter((n) => names.includes(n));
    if (series.length === 0) continue;
    // A log axis needs positive values; fall back to linear when a series has none.
    const logY = (spec.logY ?? false) && series.every((n) => metrics.series[n].value.some((v) => v > 0));
    const file = join(outDir, 'plots', `${spec.name}.png`);
    writeLinePlot(file, {
      title: spec.title ?? spec.name,
      xLabel: 'step',
      yLabel: spec.yLabel ?? (series.length === 1 ? series[0] : undefined),
      logY,
      series: series.map((n) => ({ name: n, x: metrics.series[n].step, y: metrics.series[n].value })),
    });
    files.push(file);
  }
  return files;
}

/** A path as the user would type it: relative to the working directory when inside it. */
function shownPath(path: string): string {
  const rel = relative(process.cwd(), path);
  return rel === '' ? '.' : rel.startsWith('..') ? path : rel;
}

function isEmptyDir(dir: string): boolean {
  return !existsSync(dir) || readdirSync(dir).length === 0;
}

/** Runs `experiment`; resolves when it has finished and every file is written (rejects with its error). */
export async function runExperiment<C extends ConfigObject>(experiment: Experiment<C>, options: RunOptions = {}): Promise<RunResult> {
  const write = options.quiet ? () => {} : (options.write ?? ((text: string) => void process.stdout.write(text)));
  const isTTY = options.isTTY ?? (options.write ? false : Boolean(process.stdout.isTTY));
  const assignments = [...(options.set ?? [])];

  // The config: a fresh run resolves defaults → variant → --set; a resumed one reuses its config.json.
  let outDir: string;
  let variant: string | null;
  let config: C;
  let previous: RunConfigFile | null = null;
  if (options.resume) {
    outDir = resolve(options.resume);
    const configPath = join(outDir, 'config.json');
    if (!existsSync(configPath)) throw new Error(`--resume ${options.resume}: no config.json there (is it a run directory?)`);
    previous = readJson<RunConfigFile>(configPath);
    if (previous.experiment !== experiment.name) {
      throw new Error(`--resume ${options.resume}: that run is of experiment '${previous.experiment}', not '${experiment.name}'`);
    }
    if (options.variant != null && options.variant !== previous.variant) {
      throw new Error(`--resume ${options.resume}: that run used variant '${previous.variant ?? '(none)'}', not '${options.variant}'`);
    }
    if (options.out && resolve(options.out) !== outDir) throw new Error('--out and --resume name different directories; a resumed run writes into its own');
    variant = previous.variant;
    // Keys added to the experiment since the run started take their defaults; removed keys are an error.
    const saved = applyPartial(experiment.config, previous.config, `--resume ${options.resume}: its config.json`);
    config = applyPartial(saved, parseAssignments(saved, assignments), '--set');
  } else {
    variant = options.variant ?? null;
    config = resolveConfig(experiment, variant, assignments);
    outDir = resolve(options.out ?? defaultRunDir(options.runsRoot ?? 'runs', experiment.name, variant));
    if (!isEmptyDir(outDir)) throw new Error(`--out ${outDir} is not empty; choose another directory or continue that run with --resume`);
  }
  // The GPU first: without an adapter there is nothing to write.
  const runtime = await initRuntime();
  const adapter = runtime.gpu.adapterName;
  mkdirSync(outDir, { recursive: true });
  const configFile: RunConfigFile = {
    experiment: experiment.name,
    description: experiment.description,
    experimentFile: options.experimentFile ? relative(process.cwd(), resolve(options.experimentFile)) : (previous?.experimentFile ?? null),
    variant,
    config,
    overrides: previous ? [...previous.overrides, ...assignments] : assignments,
    adapter,
    git: gitInfo(options.experimentFile ? dirname(resolve(options.experimentFile)) : process.cwd()),
    node: process.version,
    startedAt: previous?.startedAt ?? new Date().toISOString(),
    resumedAt: previous ? [...previous.resumedAt, new Date().toISOString()] : [],
  };
  writeJsonAtomic(join(outDir, 'config.json'), configFile);

  // Metrics: a resumed run keeps what was recorded up to its checkpoint.
  const metricsPath = join(outDir, 'metrics.json');
  const resumeStep = previous ? checkpointStep(outDir) : null;
  let metrics: MetricsFile = {
    experiment: experiment.name,
    variant,
    status: 'running',
    step: 0,
    totalSteps: null,
    wallSeconds: 0,
    stepsPerSecond: 0,
    summary: {},
    series: {},
  };
  if (previous && existsSync(metricsPath)) {
    metrics = { ...readJson<MetricsFile>(metricsPath), status: 'running' };
    delete metrics.error;
    truncateSeries(metrics, resumeStep ?? 0);
    metrics.step = resumeStep ?? 0;
  }
  const wallBefore = metrics.wallSeconds;

  const logPath = join(outDir, 'run.log');
  const appendLog = (line: string): void => appendFileSync(logPath, `${line}\n`);
  const totalFromConfig = typeof config.steps === 'number' ? config.steps : null;
  const progressOptions = { label: experiment.name, total: totalFromConfig, startStep: metrics.step };
  const console_ = new Progress({ ...progressOptions, isTTY, write, columns: process.stdout.columns });
  const fileProgress = new Progress({ ...progressOptions, isTTY: false, write: (t) => appendFileSync(logPath, t), plainIntervalMs: 30_000 });
  metrics.totalSteps = totalFromConfig;

  const say = (message: string): void => {
    console_.log(message);
    appendLog(`[${new Date().toISOString()}] ${message}`);
  };
  say(`${previous ? 'resuming' : 'running'} ${experiment.name}${variant ? ` (variant ${variant})` : ''} → ${shownPath(outDir)}`);
  say(`adapter: ${adapter}; git ${configFile.git.commit?.slice(0, 10) ?? 'unknown'}${configFile.git.dirty ? ' (uncommitted changes)' : ''}`);
  appendLog(`config: ${JSON.stringify(config)}`);

  let stopRequested = false;
  const onSigint = (): void => {
    if (stopRequested) process.exit(130);
    stopRequested = true;
    say('stop requested (Ctrl-C): the experiment will checkpoint and stop; press Ctrl-C again to quit at once');
  };
  process.on('SIGINT', onSigint);

  let lastMetricsWrite = performance.now();
  const saveOutputs = (): void => {
    metrics.wallSeconds = wallBefore + console_.elapsedSeconds;
    metrics.stepsPerSecond = console_.rate;
    writeJsonAtomic(metricsPath, metrics);
    writePlots(outDir, metrics, experiment.plots);
    lastMetricsWrite = performance.now();
  };

  const advance = (step: number, status?: string): void => {
    if (!Number.isFinite(step)) throw new Error(`${experiment.name}: step must be a number, got ${step}`);
    metrics.step = step;
    console_.update(step, status);
    fileProgress.update(step, status);
    if (performance.now() - lastMetricsWrite > 30_000) {
      writeJsonAtomic(metricsPath, metrics);
      lastMetricsWrite = performance.now();
    }
  };

  const ctx: ExperimentContext<C> = {
    config,
    name: experiment.name,
    variant,
    outDir,
    resuming: previous !== null,
    get stopRequested() {
      return stopRequested;
    },
    adapter,
    path(...parts) {
      const file = join(outDir, ...parts);
      mkdirSync(dirname(file), { recursive: true });
      return file;
    },
    log: say,
    setTotalSteps(total) {
      metrics.totalSteps = total;
      console_.setTotal(total);
      fileProgress.setTotal(total);
    },
    record(step, values) {
      for (const [key, value] of Object.entries(values)) {
        metrics.series[key] ??= { step: [], value: [] };
        recordPoint(metrics.series[key], step, value);
      }
      const lossKey = Object.keys(values).find((k) => /loss/i.test(k)) ?? Object.keys(values)[0];
      const shown = Object.entries(values)
        .filter(([k]) => k === lossKey || Object.keys(values).length <= 3)
        .map(([k, v]) => `${k} ${formatValue(v)}`)
        .join('  ');
      advance(step, shown);
    },
    tick: (step) => advance(step),
    summary(values) {
      Object.assign(metrics.summary, values);
    },
    async checkpoint(state) {
      await writeCheckpoint(outDir, state);
      metrics.step = state.step;
      saveOutputs();
      appendLog(`[${new Date().toISOString()}] checkpoint at step ${state.step}`);
    },
    async resume(parts = {}) {
      if (!previous) return null;
      const loaded = await readCheckpoint(outDir, parts);
      if (loaded) say(`resumed from the checkpoint at step ${loaded.step}`);
      else say('no checkpoint in the run directory: starting from step 0');
      return loaded;
    },
  };

  try {
    await experiment.run(ctx);
    metrics.status = stopRequested ? 'stopped' : 'completed';
  } catch (error) {
    metrics.status = 'failed';
    metrics.error = error instanceof Error ? (error.stack ?? error.message) : String(error);
    appendLog(`[${new Date().toISOString()}] failed: ${metrics.error}`);
    throw error;
  } finally {
    process.off('SIGINT', onSigint);
    console_.finish();
    fileProgress.finish();
    saveOutputs();
    appendLog(`[${new Date().toISOString()}] ${metrics.status}: ${Object.entries(metrics.summary).map(([k, v]) => `${k} ${v}`).join(', ')}`);
    if (metrics.status !== 'failed') {
      const summary = Object.entries(metrics.summary).map(([k, v]) => `${k} ${typeof v === 'number' ? formatValue(v) : v}`);
      write(`${metrics.status}${summary.length ? `: ${summary.join(', ')}` : ''}\nwrote ${shownPath(outDir)}/\n`);
      if (metrics.status === 'stopped' && checkpointStep(outDir) !== null) {
        const file = configFile.experimentFile ?? '<experiment file>';
        write(`continue with: nerfad run ${file} --resume ${shownPath(outDir)}\n`);
      }
    }
  }
  return { outDir, status: metrics.status, metrics };
}
