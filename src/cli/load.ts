/** Loading experiment modules (TypeScript files; the `nerfad` launcher registers tsx, vitest compiles them itself). */
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { isExperiment, type Experiment } from './experiment.ts';

/** Imports `file` and returns its experiment: the default export, or the only exported experiment. */
export async function loadExperiment(file: string): Promise<Experiment> {
  const path = resolve(file);
  if (!existsSync(path) || !statSync(path).isFile()) {
    throw new Error(`experiment file '${file}' not found (run \`nerfad list\` to see the experiments in ./experiments)`);
  }
  const module = (await import(pathToFileURL(path).href)) as Record<string, unknown>;
  if (isExperiment(module.default)) return module.default;
  const found = Object.values(module).filter(isExperiment);
  if (found.length === 1) return found[0];
  if (found.length > 1) throw new Error(`${file} exports ${found.length} experiments; export the one to run as default`);
  throw new Error(`${file} exports no experiment; write \`export default defineExperiment({ ... })\``);
}

/** The experiment files directly inside `dir` (.ts, .mts), sorted. */
export function experimentFiles(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .filter((f) => /\.m?ts$/.test(f) && !f.endsWith('.d.ts'))
    .sort()
    .map((f) => join(dir, f));
}
