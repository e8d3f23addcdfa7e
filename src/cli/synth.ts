/**
 * `nerfad synth`: a synthetic talking-head clip from a portrait and sentences (see src/data/synth/generate.ts).
 *
 *   nerfad synth --photo IMG --text SENTENCES.txt --out DIR [--seed N] [--size 128]
 *   nerfad synth --rerender DIR          re-render a clip's images from its recipe.json (no TTS needed)
 */
import type { CommandModule } from 'yargs';
import { writeContactSheet } from '../data/synth/contact-sheet.ts';
import { readSentences, rerenderClip, synthesize } from '../data/synth/generate.ts';

interface SynthArgs {
  photo?: string;
  text?: string;
  out?: string;
  seed: number;
  size: number;
  rerender?: string;
  'contact-sheet': boolean;
}

export const synthCommand: CommandModule<object, SynthArgs> = {
  command: 'synth',
  describe: 'generate a synthetic talking-head clip (dataset format) from a portrait photo and sentences',
  builder: (y) =>
    y
      .option('photo', { type: 'string', describe: 'portrait with one clear, roughly frontal face (JPEG or PNG)' })
      .option('text', { type: 'string', describe: 'sentences, one per line' })
      .option('out', { type: 'string', describe: 'the clip directory to write' })
      .option('seed', { type: 'number', default: 1, describe: 'seed for blinks and head motion' })
      .option('size', { type: 'number', default: 128, describe: 'frame width and height in pixels' })
      .option('rerender', { type: 'string', describe: 're-render the images of this clip directory from its recipe.json' })
      .option('contact-sheet', { type: 'boolean', default: true, describe: 'also write contact-sheet.png' })
      .check((argv) => {
        if (argv.rerender) return true;
        if (!argv.photo || !argv.text || !argv.out) throw new Error('synth needs --photo, --text and --out (or --rerender DIR)');
        if (!Number.isInteger(argv.size) || argv.size < 32) throw new Error(`synth: --size must be an integer ≥ 32, got ${argv.size}`);
        return true;
      }) as never,
  handler: async (argv) => {
    const log = (line: string) => console.log(`synth: ${line}`);
    const dir = argv.rerender ?? argv.out!;
    const result = argv.rerender
      ? rerenderClip(argv.rerender, log)
      : await synthesize({ photo: argv.photo!, sentences: readSentences(argv.text!), out: argv.out!, seed: argv.seed, size: argv.size, log });
    if (argv['contact-sheet']) log(`contact sheet: ${writeContactSheet(dir)}`);
    log(`${result.frameCount} frames in ${dir}; ${(result.secondsPerFrame * 1000).toFixed(0)} ms per frame`);
  },
};
