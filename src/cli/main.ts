/**
 * The `nerfad` command line (yargs). bin/nerfad.js registers tsx and calls `main`.
 *
 *   nerfad run experiments/fit-image.ts [--variant V] [--set key=value ...] [--out DIR]
 *   nerfad run [experiments/fit-image.ts] --resume DIR [--set key=value ...]
 *   nerfad list [DIR]
 *   nerfad config experiments/fit-image.ts [--variant V] [--set key=value ...]
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import yargs from 'yargs';
import { configKeys, resolveConfig, type ConfigObject } from './experiment.ts';
import { experimentFiles, loadExperiment } from './load.ts';
import { runExperiment } from './run.ts';
import { synthCommand } from './synth.ts';
import { prepareCommand } from './prepare.ts';

/** A mistake in the command line itself (answered with a pointer to --help). */
class UsageError extends Error {}

export interface MainIo {
  out: (text: string) => void;
  err: (text: string) => void;
}

const defaultIo: MainIo = {
  out: (text) => void process.stdout.write(text),
  err: (text) => void process.stderr.write(text),
};

async function listExperiments(dir: string, io: MainIo): Promise<number> {
  const files = experimentFiles(dir);
  if (files.length === 0) {
    io.out(`no experiments in ${dir}/ (an experiment is a .ts file that exports defineExperiment({...}))\n`);
    return 0;
  }
  const rows: [string, string, string][] = [];
  let failed = 0;
  for (const file of files) {
    try {
      const experiment = await loadExperiment(file);
      const variants = Object.keys(experiment.variants ?? {});
      rows.push([experiment.name, file, `${experiment.description}${variants.length ? ` [variants: ${variants.join(', ')}]` : ''}`]);
    } catch (error) {
      failed++;
      rows.push(['(error)', file, (error as Error).message.split('\n')[0]]);
    }
  }
  const nameWidth = Math.max(...rows.map((r) => r[0].length));
  const fileWidth = Math.max(...rows.map((r) => r[1].length));
  for (const [name, file, text] of rows) io.out(`${name.padEnd(nameWidth)}  ${file.padEnd(fileWidth)}  ${text}\n`);
  return failed > 0 ? 1 : 0;
}

/** The experiment file recorded in a run directory's config.json. */
function experimentFileOfRun(runDir: string): string {
  const path = join(runDir, 'config.json');
  if (!existsSync(path)) throw new Error(`--resume ${runDir}: no config.json there (is it a run directory?)`);
  const file = (JSON.parse(readFileSync(path, 'utf8')) as { experimentFile?: string | null }).experimentFile;
  if (!file) throw new Error(`--resume ${runDir}: its config.json does not name the experiment file; pass it: nerfad run FILE --resume ${runDir}`);
  return file;
}

function describeConfig(config: ConfigObject): string {
  const lines = configKeys(config).map(([key, type]) => {
    const value = key.split('.').reduce<unknown>((node, part) => (node as Record<string, unknown>)[part], config);
    return `  ${key} = ${JSON.stringify(value)}  (${type})`;
  });
  return lines.join('\n');
}

/** Runs the command line `args` (without node and the script); resolves to the exit code. */
export async function main(args: readonly string[], io: MainIo = defaultIo): Promise<number> {
  let exitCode = 0;
  const parser = yargs([...args])
    .scriptName('nerfad')
    .usage('$0 <command> [options]')
    .command(
      'run [experiment]',
      'run an experiment (a TypeScript module exporting defineExperiment) into a run directory',
      (y) =>
        y
          .positional('experiment', { type: 'string', describe: 'the experiment file, e.g. experiments/fit-image.ts (with --resume: default the run\'s own)' })
          .option('variant', { alias: 'v', type: 'string', describe: 'a named variant of the config (see `nerfad config FILE`)' })
          .option('set', { alias: 's', type: 'string', array: true, default: [] as string[], describe: 'override a config value: key=value (repeatable)' })
          .option('out', { alias: 'o', type: 'string', describe: 'the run directory (default runs/NAME/<timestamp>)' })
          .option('resume', { type: 'string', describe: 'continue the run in this directory from its checkpoint' })
          .option('quiet', { alias: 'q', type: 'boolean', default: false, describe: 'print nothing (files are still written)' })
          .example('$0 run experiments/fit-image.ts', 'the demo: fit an image with a Fourier-feature MLP')
          .example('$0 run experiments/fit-image.ts --variant no-fourier --set steps=200', 'an ablation, shorter')
          .example('$0 run --resume runs/fit-image/2026-11-25T17-46-51 --set steps=2000', 'continue a run, for longer'),
      async (argv) => {
        const file = argv.experiment ?? (argv.resume ? experimentFileOfRun(argv.resume) : undefined);
        if (!file) throw new UsageError('name the experiment file to run, e.g. `nerfad run experiments/fit-image.ts`');
        const experiment = await loadExperiment(file);
        const result = await runExperiment(experiment, {
          variant: argv.variant ?? null,
          set: argv.set.map(String),
          out: argv.out,
          resume: argv.resume,
          experimentFile: file,
          quiet: argv.quiet,
          // The real stdout gets the terminal progress bar; another sink (tests) gets plain lines.
          write: io === defaultIo ? undefined : io.out,
        });
        exitCode = result.status === 'completed' ? 0 : 130;
      },
    )
    .command(
      'list [dir]',
      'list the experiments in a folder with their descriptions and variants',
      (y) => y.positional('dir', { type: 'string', default: 'experiments', describe: 'the folder to scan' }),
      async (argv) => {
        exitCode = await listExperiments(argv.dir, io);
      },
    )
    .command(
      'config <experiment>',
      'print an experiment\'s resolved config (defaults, then --variant, then --set) and its variants',
      (y) =>
        y
          .positional('experiment', { type: 'string', demandOption: true })
          .option('variant', { alias: 'v', type: 'string' })
          .option('set', { alias: 's', type: 'string', array: true, default: [] as string[] }),
      async (argv) => {
        const experiment = await loadExperiment(argv.experiment);
        const config = resolveConfig(experiment, argv.variant ?? null, argv.set.map(String));
        io.out(`${experiment.name}: ${experiment.description}\n`);
        io.out(`config${argv.variant ? ` (variant ${argv.variant})` : ''}:\n${describeConfig(config)}\n`);
        const variants = Object.entries(experiment.variants ?? {});
        if (variants.length) io.out(`variants:\n${variants.map(([n, p]) => `  ${n}: ${JSON.stringify(p)}`).join('\n')}\n`);
      },
    )
    .command(synthCommand)
    .command(prepareCommand)
    .demandCommand(1, 'name a command')
    .strict()
    .help()
    .alias('help', 'h')
    .version(false)
    .wrap(Math.min(120, process.stdout.columns || 100))
    .exitProcess(false)
    .fail((message, error) => {
      throw error ?? new UsageError(message);
    });

  try {
    await parser.parseAsync(args, {}, (_err, _argv, output) => {
      if (output) io.out(`${output}\n`);
    });
  } catch (error) {
    if (error instanceof UsageError) {
      io.err(`nerfad: ${error.message}\n(run \`nerfad --help\` for the commands and options)\n`);
      return 1;
    }
    io.err(`nerfad: ${(error as Error).message}\n`);
    if (process.env.NERFAD_DEBUG) io.err(`${(error as Error).stack}\n`);
    return 1;
  }
  return exitCode;
}
