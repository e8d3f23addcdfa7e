/**
 * Experiments as TypeScript modules.
 *
 *   // experiments/my-experiment.ts
 *   import { defineExperiment } from '../src/cli/experiment.ts';
 *   export default defineExperiment({
 *     name: 'my-experiment',
 *     description: 'what it trains and what it shows',
 *     config: { steps: 500, lr: 1e-3, width: 64, activation: 'relu' },
 *     variants: { narrow: { width: 16 }, long: { steps: 5000 } },
 *     run: async (ctx) => {
 *       for (let step = 1; step <= ctx.config.steps; step++) { ...; ctx.record(step, { loss }); }
 *     },
 *   });
 *
 * The config's defaults fix each key's type: `--set key=value` is parsed by that type and an unknown key is an
 * error. Nested objects are addressed with dotted keys (`--set model.width=32`). A variant is a partial config
 * applied over the defaults (then `--set` over that).
 */
import type { CheckpointParts } from '../io/checkpoint.ts';

export type ConfigScalar = number | string | boolean;
export type ConfigValue = ConfigScalar | readonly number[] | readonly string[] | ConfigObject;
export interface ConfigObject {
  readonly [key: string]: ConfigValue;
}

export type DeepPartial<T> = T extends readonly unknown[] ? T : T extends object ? { [K in keyof T]?: DeepPartial<T[K]> } : T;

/**
 * What `ctx.checkpoint` stores: the step reached, a model, an optimizer (Adam's moments and step count), an EMA,
 * further named tensors (src/io/checkpoint.ts names them and writes one safetensors file), and JSON state.
 */
export interface CheckpointState extends CheckpointParts {
  /** Steps completed; a resumed run continues at step + 1. */
  step: number;
  /** Any JSON-serialisable state (schedules, RNG seeds, best scores). */
  data?: unknown;
}

/** What `ctx.resume` returns when the run directory holds a checkpoint. */
export interface ResumedState {
  step: number;
  data: unknown;
  /** The safetensors metadata (format, version, optimizer step, ...). */
  metadata: Record<string, string>;
}

export interface ExperimentContext<C extends ConfigObject> {
  /** The resolved config: defaults, then the variant, then `--set`. */
  readonly config: Readonly<C>;
  readonly name: string;
  /** The variant's name, or null for the defaults. */
  readonly variant: string | null;
  /** The run directory (absolute). */
  readonly outDir: string;
  /** True when the run was started with `--resume` (call `resume()` to load the checkpoint). */
  readonly resuming: boolean;
  /** True once the user pressed Ctrl-C: checkpoint and return. */
  readonly stopRequested: boolean;
  /** The WebGPU adapter's name. */
  readonly adapter: string;
  /** A path inside the run directory (folders are created). */
  path(...parts: string[]): string;
  /** A line for the log file and the console (printed above the progress bar). */
  log(message: string): void;
  /** The progress bar's total (defaults to `config.steps` when that is a number). */
  setTotalSteps(total: number): void;
  /**
   * Records scalar metrics at `step` (steps completed, from 1) into metrics.json and the plots, and moves the
   * progress bar. A key containing "loss" is shown on the bar.
   */
  record(step: number, values: Readonly<Record<string, number>>): void;
  /** Moves the progress bar without recording metrics. */
  tick(step: number): void;
  /** Final results for metrics.json's `summary` (merged over calls). */
  summary(values: Readonly<Record<string, number | string | boolean>>): void;
  /** Writes a checkpoint into the run directory atomically (the previous one stays valid until it is replaced). */
  checkpoint(state: CheckpointState): Promise<void>;
  /**
   * On a resumed run, loads the run directory's checkpoint into `parts` (the same model/optimizer/EMA/tensors that
   * were checkpointed, written in place; any mismatch is an error naming each tensor) and returns its step and data.
   * Null on a fresh run or when the directory has no checkpoint yet.
   */
  resume(parts?: CheckpointParts): Promise<ResumedState | null>;
}

export interface PlotSpec {
  /** File name without extension (written to plots/NAME.png). */
  name: string;
  title?: string;
  /** Metric names drawn on this plot. */
  series: string[];
  logY?: boolean;
  yLabel?: string;
}

export interface ExperimentDefinition<C extends ConfigObject> {
  name: string;
  description: string;
  config: C;
  variants?: Readonly<Record<string, DeepPartial<NoInfer<C>>>>;
  /** Plots written from the recorded metrics; default: every "loss" metric on one log-scale plot, others alone. */
  plots?: PlotSpec[];
  run(ctx: ExperimentContext<C>): Promise<void>;
}

export interface Experiment<C extends ConfigObject = ConfigObject> extends ExperimentDefinition<C> {
  readonly kind: 'nerfad-experiment';
}

const NAME_PATTERN = /^[a-z0-9][a-z0-9._-]*$/i;

/** Declares an experiment; its shape is checked now so that a mistake shows at load time, not after a run. */
export function defineExperiment<C extends ConfigObject>(def: ExperimentDefinition<C>): Experiment<C> {
  if (!NAME_PATTERN.test(def.name)) {
    throw new Error(`defineExperiment: name '${def.name}' must be letters, digits, '.', '_' or '-' (it names the run folder)`);
  }
  checkConfigShape(def.config, '', def.name);
  for (const [variant, partial] of Object.entries(def.variants ?? {})) {
    if (!NAME_PATTERN.test(variant)) throw new Error(`experiment '${def.name}': variant name '${variant}' is not a valid name`);
    applyPartial(def.config, partial as ConfigObject, `experiment '${def.name}' variant '${variant}'`);
  }
  return { ...def, kind: 'nerfad-experiment' };
}

export function isExperiment(value: unknown): value is Experiment {
  return typeof value === 'object' && value !== null && (value as { kind?: unknown }).kind === 'nerfad-experiment';
}

function isPlainObject(value: unknown): value is ConfigObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function checkConfigShape(config: ConfigObject, prefix: string, experiment: string): void {
  for (const [key, value] of Object.entries(config)) {
    const path = prefix + key;
    if (isPlainObject(value)) checkConfigShape(value, `${path}.`, experiment);
    else if (Array.isArray(value)) {
      const kinds = new Set(value.map((v) => typeof v));
      if (kinds.size > 1 || (kinds.size === 1 && !kinds.has('number') && !kinds.has('string'))) {
        throw new Error(`experiment '${experiment}': config '${path}' must be an array of numbers or of strings`);
      }
    } else if (!['number', 'string', 'boolean'].includes(typeof value)) {
      throw new Error(`experiment '${experiment}': config '${path}' has type ${typeof value}; use number, string, boolean, arrays or objects`);
    }
  }
}

/** Every dotted key of a config with its default's type, e.g. ['lr', 'number'], ['model.width', 'number']. */
export function configKeys(config: ConfigObject, prefix = ''): [string, string][] {
  const keys: [string, string][] = [];
  for (const [key, value] of Object.entries(config)) {
    if (isPlainObject(value)) keys.push(...configKeys(value, `${prefix}${key}.`));
    else keys.push([prefix + key, describeType(value)]);
  }
  return keys;
}

function describeType(value: ConfigValue): string {
  if (Array.isArray(value)) return typeof value[0] === 'string' ? 'string[]' : 'number[]';
  return typeof value;
}

/** A deep copy of `base` with `partial` applied; every key of `partial` must exist in `base` with the same type. */
export function applyPartial<C extends ConfigObject>(base: C, partial: ConfigObject, where: string, prefix = ''): C {
  const out: Record<string, ConfigValue> = { ...base };
  for (const [key, value] of Object.entries(partial)) {
    const path = prefix + key;
    if (!(key in base)) throw new Error(`${where}: unknown config key '${path}'${suggestKeys(base, prefix)}`);
    const current = base[key];
    if (isPlainObject(current)) {
      if (!isPlainObject(value)) throw new Error(`${where}: config '${path}' is an object, got ${JSON.stringify(value)}`);
      out[key] = applyPartial(current, value, where, `${path}.`);
    } else {
      if (describeType(current) !== describeType(value) && !(Array.isArray(current) && Array.isArray(value) && value.length === 0)) {
        throw new Error(`${where}: config '${path}' is a ${describeType(current)}, got ${JSON.stringify(value)}`);
      }
      out[key] = Array.isArray(value) ? [...value] : value;
    }
  }
  return out as C;
}

function suggestKeys(config: ConfigObject, prefix: string): string {
  const keys = Object.keys(config).map((k) => prefix + k);
  return keys.length ? ` (valid keys here: ${keys.join(', ')})` : '';
}

const TRUE_WORDS = new Set(['true', '1', 'yes', 'on']);
const FALSE_WORDS = new Set(['false', '0', 'no', 'off']);

function parseNumber(text: string, key: string): number {
  const value = Number(text.trim());
  if (text.trim() === '' || !Number.isFinite(value)) throw new Error(`--set ${key}=${text}: '${text}' is not a number`);
  return value;
}

/** Parses one `--set` value by the type of the default it replaces. */
export function parseConfigValue(text: string, current: ConfigValue, key: string): ConfigValue {
  if (typeof current === 'number') return parseNumber(text, key);
  if (typeof current === 'boolean') {
    const word = text.trim().toLowerCase();
    if (TRUE_WORDS.has(word)) return true;
    if (FALSE_WORDS.has(word)) return false;
    throw new Error(`--set ${key}=${text}: '${text}' is not a boolean (true/false, yes/no, 1/0)`);
  }
  if (typeof current === 'string') return text;
  if (Array.isArray(current)) {
    const items = text.trim() === '' ? [] : text.split(',').map((s) => s.trim());
    return typeof current[0] === 'string' ? items : items.map((item) => parseNumber(item, key));
  }
  throw new Error(`--set ${key}=${text}: '${key}' is an object; set one of its keys (${key}.<name>=...)`);
}

/** Parses `key=value` assignments against `config` into a nested partial config. */
export function parseAssignments(config: ConfigObject, assignments: readonly string[]): ConfigObject {
  const partial: Record<string, unknown> = {};
  const known = configKeys(config);
  for (const assignment of assignments) {
    const eq = assignment.indexOf('=');
    if (eq <= 0) throw new Error(`--set '${assignment}': expected key=value`);
    const key = assignment.slice(0, eq).trim();
    const text = assignment.slice(eq + 1);
    const parts = key.split('.');
    let node: ConfigValue = config;
    for (const part of parts) {
      if (!isPlainObject(node) || !(part in node)) {
        const list = known.map(([k, t]) => `${k} (${t})`).join(', ');
        throw new Error(`--set ${key}=${text}: unknown config key '${key}'. Valid keys: ${list}`);
      }
      node = node[part];
    }
    const value = parseConfigValue(text, node, key);
    let target = partial;
    for (const part of parts.slice(0, -1)) target = (target[part] ??= {}) as Record<string, unknown>;
    target[parts[parts.length - 1]] = value;
  }
  return partial as ConfigObject;
}

/** Defaults, then the named variant, then the `--set` assignments. A bad variant name lists the valid ones. */
export function resolveConfig<C extends ConfigObject>(experiment: ExperimentDefinition<C>, variant: string | null, assignments: readonly string[] = []): C {
  let config = experiment.config;
  if (variant !== null) {
    const variants = experiment.variants ?? {};
    if (!Object.hasOwn(variants, variant)) {
      const names = Object.keys(variants);
      throw new Error(
        `experiment '${experiment.name}' has no variant '${variant}'; ` +
          (names.length ? `valid variants: ${names.join(', ')}` : 'it defines no variants'),
      );
    }
    config = applyPartial(config, variants[variant] as ConfigObject, `variant '${variant}'`);
  }
  return applyPartial(config, parseAssignments(config, assignments), '--set');
}
