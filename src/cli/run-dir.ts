/**
 * The run directory's files: JSON written atomically (temp file, fsync, rename), metrics series, and checkpoints
 * swapped in as whole folders so that a crash at any moment leaves the previous checkpoint readable.
 *
 *   DIR/config.json        resolved config, variant, adapter, git commit
 *   DIR/metrics.json       series per metric ({ step[], value[] }), summary, status, throughput
 *   DIR/run.log            header, the experiment's log lines, progress lines
 *   DIR/plots/*.png        loss curves and the other metrics
 *   DIR/checkpoint/        state.json (step, data, tensor table) + tensors.bin (raw little-endian values)
 */
import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, rmSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { runtime } from '../kernels/runtime/runtime.ts';
import { shapeString, type Tensor } from '../tensor/tensor.ts';
import type { CheckpointState } from './experiment.ts';

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

const CHECKPOINT_FORMAT = 'nerfad-run-checkpoint/1';

interface TensorEntry {
  name: string;
  shape: number[];
  dtype: string;
  byteOffset: number;
  byteLength: number;
}

interface CheckpointFile {
  format: string;
  step: number;
  savedAt: string;
  data: unknown;
  tensors: TensorEntry[];
}

export const CHECKPOINT_DIR = 'checkpoint';
const PARTIAL_DIR = 'checkpoint.partial';
const PREVIOUS_DIR = 'checkpoint.previous';

/**
 * Reads the tensors back from the GPU and writes DIR/checkpoint atomically: the new checkpoint is written in full
 * to checkpoint.partial, then the folders are swapped by renames (the previous one is removed last).
 */
export async function writeCheckpoint(runDir: string, state: CheckpointState): Promise<void> {
  if (!Number.isInteger(state.step) || state.step < 0) throw new Error(`checkpoint: step must be a whole number ≥ 0, got ${state.step}`);
  const entries: TensorEntry[] = [];
  const chunks: Uint8Array[] = [];
  let byteOffset = 0;
  for (const [name, tensor] of Object.entries(state.tensors ?? {})) {
    const values = await tensor.data();
    const bytes = new Uint8Array(values.buffer, values.byteOffset, values.byteLength);
    entries.push({ name, shape: [...tensor.shape], dtype: tensor.dtype, byteOffset, byteLength: bytes.byteLength });
    chunks.push(bytes);
    byteOffset += bytes.byteLength;
  }
  const file: CheckpointFile = { format: CHECKPOINT_FORMAT, step: state.step, savedAt: new Date().toISOString(), data: state.data ?? null, tensors: entries };

  const partial = join(runDir, PARTIAL_DIR);
  const current = join(runDir, CHECKPOINT_DIR);
  const previous = join(runDir, PREVIOUS_DIR);
  rmSync(partial, { recursive: true, force: true });
  mkdirSync(partial, { recursive: true });
  writeFileSynced(join(partial, 'tensors.bin'), chunks);
  writeFileSynced(join(partial, 'state.json'), [Buffer.from(`${JSON.stringify(file, null, 2)}\n`)]);
  rmSync(previous, { recursive: true, force: true });
  if (existsSync(current)) renameSync(current, previous);
  renameSync(partial, current);
  rmSync(previous, { recursive: true, force: true });
}

/** The checkpoint folder to read: the current one, or the previous one when a crash hit between the renames. */
function checkpointFolder(runDir: string): string | null {
  for (const name of [CHECKPOINT_DIR, PREVIOUS_DIR]) {
    if (existsSync(join(runDir, name, 'state.json'))) return join(runDir, name);
  }
  return null;
}

/** The step of the run directory's checkpoint, or null when it has none. */
export function checkpointStep(runDir: string): number | null {
  const folder = checkpointFolder(runDir);
  return folder ? readJson<CheckpointFile>(join(folder, 'state.json')).step : null;
}

/**
 * Loads the checkpoint: tensors named in `into` are overwritten in place (shapes must match, and every one must be
 * in the checkpoint); returns null when the directory has no checkpoint.
 */
export function readCheckpoint(runDir: string, into: Readonly<Record<string, Tensor>> = {}): { step: number; data: unknown; restored: string[] } | null {
  const folder = checkpointFolder(runDir);
  if (!folder) return null;
  const file = readJson<CheckpointFile>(join(folder, 'state.json'));
  if (file.format !== CHECKPOINT_FORMAT) throw new Error(`${folder}: unknown checkpoint format '${file.format}'`);
  const blob = readFileSync(join(folder, 'tensors.bin'));
  const byName = new Map(file.tensors.map((e) => [e.name, e]));
  const restored: string[] = [];
  for (const [name, tensor] of Object.entries(into)) {
    const entry = byName.get(name);
    if (!entry) {
      throw new Error(`resume: the checkpoint in ${folder} has no tensor '${name}' (it has: ${[...byName.keys()].join(', ') || 'none'})`);
    }
    if (entry.shape.length !== tensor.shape.length || entry.shape.some((d, i) => d !== tensor.shape[i]) || entry.dtype !== tensor.dtype) {
      throw new Error(
        `resume: tensor '${name}' is ${shapeString(entry.shape)} ${entry.dtype} in the checkpoint but ${shapeString(tensor.shape)} ${tensor.dtype} here`,
      );
    }
    if (entry.byteOffset + entry.byteLength > blob.byteLength) throw new Error(`resume: ${folder}/tensors.bin is truncated at '${name}'`);
    // Copy into an aligned buffer: the blob's offset inside node's pool need not be 4-byte aligned.
    const bytes = new Uint8Array(entry.byteLength);
    bytes.set(blob.subarray(entry.byteOffset, entry.byteOffset + entry.byteLength));
    if (entry.byteLength > 0) runtime().upload(tensor.view, bytes);
    restored.push(name);
  }
  return { step: file.step, data: file.data, restored };
}
