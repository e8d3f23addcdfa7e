/**
 * Checkpoints: a model's parameters and buffers, an optimizer's state and an EMA in one safetensors file
 * (format and atomic write: safetensors.ts).
 *
 * Tensor names in the file:
 *   <dotted module path>                   model parameters and buffers, e.g. `encoder.0.weight` (torch's names)
 *   <name>                                 extra tensors passed as `tensors: { name: tensor }`
 *   optimizer.exp_avg.<param name>         Adam's first moment m   (torch's state names)
 *   optimizer.exp_avg_sq.<param name>      Adam's second moment v
 *   ema.<param name>                       the EMA's averaged weights
 * Metadata (`__metadata__`, strings): `format` = nerfad-checkpoint-1, `nerfad.version`, `step` (the training step
 * passed to save), `optimizer` (Adam or AdamW), `optimizer.step` (updates taken: Adam's bias-correction count),
 * `ema.decay`, plus any caller metadata.
 *
 * Loading validates everything before changing anything: every tensor the model/optimizer/EMA expects must be in
 * the file with the same dtype and shape, and (with `strict`, the default) the file must hold nothing else. All
 * problems are reported at once, naming the file and each tensor.
 */
import { readFileSync } from 'node:fs';
import { runtime } from '../kernels/runtime/runtime.ts';
import type { AnyModule } from '../models/module.ts';
import type { Adam } from '../optim/adam.ts';
import type { Ema } from '../optim/ema.ts';
import { Tensor, shapeString, type DType } from '../tensor/tensor.ts';
import { loadSafetensors, saveSafetensors, type HostTensor, type SafetensorsDType } from './safetensors.ts';

export const CHECKPOINT_FORMAT = 'nerfad-checkpoint-1';

function readVersion(): string {
  try {
    const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version?: string };
    return pkg.version ?? 'unknown';
  } catch {
    return 'unknown';
  }
}

export const NERFAD_VERSION = readVersion();

export interface CheckpointParts {
  model?: AnyModule;
  optimizer?: Adam;
  ema?: Ema;
  /** Further named tensors (latent codes, running statistics kept outside modules, ...). */
  tensors?: Record<string, Tensor>;
}

export interface SaveCheckpointOptions extends CheckpointParts {
  /** The training step, stored as metadata `step`. */
  step?: number;
  metadata?: Record<string, string>;
}

export interface LoadCheckpointOptions extends CheckpointParts {
  /** Refuse files holding tensors nobody asked for. Default true. */
  strict?: boolean;
}

export interface LoadedCheckpoint {
  step: number | undefined;
  metadata: Record<string, string>;
}

const FILE_DTYPE: Record<DType, SafetensorsDType> = { f32: 'F32', i32: 'I32', u32: 'U32' };

interface Entry {
  name: string;
  tensor: Tensor;
  /** Views made for the occasion (optimizer moments, EMA slices), disposed afterwards. */
  temporary: boolean;
}

/** Names every tensor of the parts, and lists what goes into (or comes out of) the file. */
function collectEntries(parts: CheckpointParts, what: string): Entry[] {
  const entries: Entry[] = [];
  const nameOf = new Map<Tensor, string>();
  const add = (name: string, tensor: Tensor, temporary = false): void => {
    if (entries.some((e) => e.name === name)) throw new Error(`${what}: two tensors are named '${name}'`);
    entries.push({ name, tensor, temporary });
    if (!temporary && !nameOf.has(tensor)) nameOf.set(tensor, name);
  };
  for (const [name, t] of parts.model?.stateEntries() ?? []) add(name, t);
  for (const [name, t] of Object.entries(parts.tensors ?? {})) add(name, t);
  const paramName = (p: Tensor, owner: string): string => {
    const name = nameOf.get(p);
    if (!name) throw new Error(`${what}: the ${owner}'s parameter ${p} is not in the model or the named tensors, so it has no name`);
    return name;
  };
  if (parts.optimizer) {
    for (const p of parts.optimizer.parameters) {
      const name = paramName(p, 'optimizer');
      const { m, v } = parts.optimizer.state(p);
      add(`optimizer.exp_avg.${name}`, m, true);
      add(`optimizer.exp_avg_sq.${name}`, v, true);
    }
  }
  if (parts.ema) {
    for (const p of parts.ema.optimizer.parameters) add(`ema.${paramName(p, 'EMA')}`, parts.ema.averageOf(p), true);
  }
  return entries;
}

function disposeTemporaries(entries: Entry[]): void {
  for (const e of entries) if (e.temporary) e.tensor.dispose();
}

/** Saves the parts to `path` (atomically). Reads the tensors back from the GPU (awaits queued work). */
export async function saveCheckpoint(path: string, options: SaveCheckpointOptions): Promise<void> {
  const entries = collectEntries(options, `saveCheckpoint(${path})`);
  const tensors = new Map<string, HostTensor>();
  try {
    for (const { name, tensor } of entries) {
      tensors.set(name, { dtype: FILE_DTYPE[tensor.dtype], shape: [...tensor.shape], data: await tensor.data() });
    }
  } finally {
    disposeTemporaries(entries);
  }
  const metadata: Record<string, string> = { format: CHECKPOINT_FORMAT, 'nerfad.version': NERFAD_VERSION };
  if (options.step !== undefined) metadata.step = String(options.step);
  if (options.optimizer) {
    metadata.optimizer = options.optimizer.kind;
    metadata['optimizer.step'] = String(options.optimizer.stepCount);
  }
  if (options.ema) metadata['ema.decay'] = String(options.ema.decay);
  Object.assign(metadata, options.metadata ?? {});
  await saveSafetensors(path, tensors, metadata);
}

/** Loads `path` into the parts (all validated first; nothing changes if anything is wrong). */
export async function loadCheckpoint(path: string, options: LoadCheckpointOptions): Promise<LoadedCheckpoint> {
  const file = await loadSafetensors(path);
  const entries = collectEntries(options, `loadCheckpoint(${path})`);
  try {
    const problems: string[] = [];
    for (const { name, tensor } of entries) {
      const stored = file.tensors.get(name);
      const wanted = `${FILE_DTYPE[tensor.dtype]} ${shapeString(tensor.shape)}`;
      if (!stored) {
        problems.push(`tensor '${name}' is missing (expected ${wanted})`);
        continue;
      }
      const found = `${stored.dtype} ${shapeString(stored.shape)}`;
      if (found !== wanted) problems.push(`tensor '${name}' is ${found} in the file, expected ${wanted}`);
    }
    if (options.optimizer) {
      const steps = Number(file.metadata['optimizer.step']);
      if (file.metadata['optimizer.step'] === undefined) problems.push('no optimizer state (metadata optimizer.step is missing)');
      else if (!Number.isInteger(steps) || steps < 0) problems.push(`metadata optimizer.step '${file.metadata['optimizer.step']}' is not a step count`);
    }
    if (options.strict ?? true) {
      const expected = new Set(entries.map((e) => e.name));
      const unexpected = [...file.tensors.keys()].filter((n) => !expected.has(n));
      if (unexpected.length > 0) {
        const shown = unexpected.slice(0, 10).map((n) => `'${n}'`).join(', ');
        problems.push(`unexpected tensors ${shown}${unexpected.length > 10 ? ` and ${unexpected.length - 10} more` : ''} (pass strict: false to ignore them)`);
      }
    }
    if (problems.length > 0) {
      throw new Error(`loadCheckpoint: ${path} does not match:\n  - ${problems.join('\n  - ')}`);
    }
    const rt = runtime();
    for (const { name, tensor } of entries) {
      const stored = file.tensors.get(name)!;
      if (tensor.size > 0) rt.upload(tensor.view, stored.data);
    }
    if (options.optimizer) options.optimizer.stepCount = Number(file.metadata['optimizer.step']);
  } finally {
    disposeTemporaries(entries);
  }
  const step = file.metadata.step === undefined ? undefined : Number(file.metadata.step);
  return { step, metadata: file.metadata };
}
