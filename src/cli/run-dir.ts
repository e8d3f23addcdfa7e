/**
 * The run directory's files: JSON written atomically (temp file, fsync, rename), metrics series, and checkpoints
 * swapped in as whole folders so that a crash at any moment leaves the previous checkpoint readable.
 *
 *   DIR/config.json        resolved config, variant, adapter, git commit
 *   DIR/metrics.json       series per metric ({ step[], value[] }), summary, status, throughput
 *   DIR/run.log            header, the experiment's log lines, progress lines
 *   DIR/plots/*.png        loss curves and the other metrics
 *   DIR/checkpoint/        state.json (step, JSON data) + state.safetensors (model, optimizer, EMA, named tensors)
 */
import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, rmSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { loadCheckpoint, saveCheckpoint, type CheckpointParts } from '../io/checkpoint.ts';
import type { CheckpointState, ResumedState } from './experiment.ts';

function writeFileSynced(path: string, chunks: readonly Uint8Array[]): void {
  const fd = openSync(path, 'w');
  try {
    for (const chunk of chunks) {
      let written = 0;
      while (written < chunk.byteLength) written += writeSync(fd, chunk, written);
    }
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** Writes JSON so that readers see either the old file or the new one, never half of one. */
export function writeJsonAtomic(path: string, value: unknown): void {
  const temp = `${path}.tmp-${process.pid}`;
  writeFileSynced(temp, [Buffer.from(`${JSON.stringify(value, null, 2)}\n`)]);
  renameSync(temp, path);
}

export function readJson<T>(path: string): T {
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as T;
  } catch (error) {
    throw new Error(`cannot read ${path}: ${(error as Error).message}`);
  }
}

export interface MetricSeries {
  step: number[];
  value: number[];
}

export type RunStatus = 'running' | 'completed' | 'stopped' | 'failed';

export interface MetricsFile {
  experiment: string;
  variant: string | null;
  status: RunStatus;
  /** The last step reached and the planned total. */
  step: number;
  totalSteps: number | null;
  /** Wall time of the run over every session (resumed runs add up), and this session's throughput. */
  wallSeconds: number;
  stepsPerSecond: number;
  summary: Record<string, number | string | boolean>;
  series: Record<string, MetricSeries>;
  error?: string;
}

/** Appends a point; a step at or before the series' last one first drops the points from that step on (a resumed run). */
export function recordPoint(series: MetricSeries, step: number, value: number): void {
  const last = series.step.length - 1;
  if (last >= 0 && step <= series.step[last]) {
    let keep = series.step.length;
    while (keep > 0 && series.step[keep - 1] >= step) keep--;
    series.step.length = keep;
    series.value.length = keep;
  }
  series.step.push(step);
  series.value.push(value);
}

/** Drops every point after `step` (resuming from a checkpoint taken at `step`). */
export function truncateSeries(metrics: MetricsFile, step: number): void {
  for (const s of Object.values(metrics.series)) {
    let keep = s.step.length;
    while (keep > 0 && s.step[keep - 1] > step) keep--;
    s.step.length = keep;
    s.value.length = keep;
  }
}

const RUN_CHECKPOINT_FORMAT = 'nerfad-run-checkpoint-2';

interface RunCheckpointFile {
  format: string;
  step: number;
  savedAt: string;
  data: unknown;
}

export const CHECKPOINT_DIR = 'checkpoint';
const PARTIAL_DIR = 'checkpoint.partial';
const PREVIOUS_DIR = 'checkpoint.previous';
const TENSORS_FILE = 'state.safetensors';
const STATE_FILE = 'state.json';

/**
 * Writes DIR/checkpoint atomically: the tensors (model, optimizer, EMA, named tensors: src/io/checkpoint.ts) and
 * state.json are written in full to checkpoint.partial, then the folders are swapped by renames (the previous
 * checkpoint is removed last), so that a crash at any moment leaves one complete checkpoint.
 */
export async function writeCheckpoint(runDir: string, state: CheckpointState): Promise<void> {
  if (!Number.isInteger(state.step) || state.step < 0) throw new Error(`checkpoint: step must be a whole number ≥ 0, got ${state.step}`);
  const partial = join(runDir, PARTIAL_DIR);
  const current = join(runDir, CHECKPOINT_DIR);
  const previous = join(runDir, PREVIOUS_DIR);
  rmSync(partial, { recursive: true, force: true });
  mkdirSync(partial, { recursive: true });
  const { step, data, model, optimizer, ema, tensors } = state;
  await saveCheckpoint(join(partial, TENSORS_FILE), { step, model, optimizer, ema, tensors });
  const file: RunCheckpointFile = { format: RUN_CHECKPOINT_FORMAT, step, savedAt: new Date().toISOString(), data: data ?? null };
  writeFileSynced(join(partial, STATE_FILE), [Buffer.from(`${JSON.stringify(file, null, 2)}\n`)]);
  rmSync(previous, { recursive: true, force: true });
  if (existsSync(current)) renameSync(current, previous);
  renameSync(partial, current);
  rmSync(previous, { recursive: true, force: true });
}

/** The checkpoint folder to read: the current one, or the previous one when a crash hit between the renames. */
function checkpointFolder(runDir: string): string | null {
  for (const name of [CHECKPOINT_DIR, PREVIOUS_DIR]) {
    if (existsSync(join(runDir, name, STATE_FILE)) && existsSync(join(runDir, name, TENSORS_FILE))) return join(runDir, name);
  }
  return null;
}

/** The step of the run directory's checkpoint, or null when it has none. */
export function checkpointStep(runDir: string): number | null {
  const folder = checkpointFolder(runDir);
  return folder ? readJson<RunCheckpointFile>(join(folder, STATE_FILE)).step : null;
}

/**
 * Loads the checkpoint into `parts` (validated first: every tensor must match, and the file must hold nothing
 * else); returns null when the directory has no checkpoint.
 */
export async function readCheckpoint(runDir: string, parts: CheckpointParts = {}): Promise<ResumedState | null> {
  const folder = checkpointFolder(runDir);
  if (!folder) return null;
  const file = readJson<RunCheckpointFile>(join(folder, STATE_FILE));
  if (file.format !== RUN_CHECKPOINT_FORMAT) throw new Error(`${folder}: unknown checkpoint format '${file.format}'`);
  const loaded = await loadCheckpoint(join(folder, TENSORS_FILE), parts);
  return { step: file.step, data: file.data, metadata: loaded.metadata };
}
