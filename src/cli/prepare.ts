/**
 * `nerfad prepare`: a talking-head video with sound → a nerfad clip (src/data/prepare/prepare.ts), or an AD-NeRF /
 * ER-NeRF preprocessed folder → a nerfad clip (src/data/import-adnerf.ts).
 *
 *   nerfad prepare VIDEO --out DIR [--size 512] [--seconds S] [--fov 55] [--smooth 2] [--contact-sheet]
 *   nerfad prepare --import-adnerf SRC --out DIR
 *
 * A mistake in the input (not a video, no face, …) prints one clear line and exits 1, never a stack trace
 * (NERFAD_DEBUG=1 shows it).
 */
import type { CommandModule } from 'yargs';
import { importAdnerf } from '../data/import-adnerf.ts';
import { writePrepareSheet } from '../data/prepare/contact-sheet.ts';
import { prepareVideo } from '../data/prepare/prepare.ts';

interface PrepareArgs {
  video?: string;
  out?: string;
  size: number;
  seconds?: number;
  fov: number;
  smooth: number;
  'min-seconds': number;
  'crop-size': number;
  'import-adnerf'?: string;
  'contact-sheet': boolean;
}

export const prepareCommand: CommandModule<object, PrepareArgs> = {
  command: 'prepare [video]',
  describe: 'turn a talking-head video with sound (or an AD-NeRF/ER-NeRF preprocessed folder) into a training clip',
  builder: (y) =>
    y
      .positional('video', { type: 'string', describe: 'the video: one person talking to the camera, with sound' })
      .option('out', { alias: 'o', type: 'string', describe: 'the clip directory to write (resumes an interrupted run there)' })
      .option('size', { type: 'number', default: 512, describe: 'frame side in pixels of the square head-and-shoulders crop' })
      .option('seconds', { type: 'number', describe: 'use only the first SECONDS of the video' })
      .option('fov', { type: 'number', default: 55, describe: 'assumed horizontal field of view of the camera, degrees (sets the focal length)' })
      .option('smooth', { type: 'number', default: 2, describe: 'σ in frames of the head-pose smoothing (0 = none)' })
      .option('min-seconds', { type: 'number', default: 2, describe: 'refuse clips shorter than this' })
      .option('crop-size', { type: 'number', default: 64, describe: 'side of the attention module\'s face crops (clip.json crop_size)' })
      .option('import-adnerf', { type: 'string', describe: 'import this AD-NeRF/ER-NeRF preprocessed folder instead of a video' })
      .option('contact-sheet', { type: 'boolean', default: true, describe: 'also write contact-sheet.png (frames with landmarks, masks, pose axes)' })
      .example('$0 prepare me-talking.mp4 --out data/me', 'a clip from your own video')
      .example('$0 prepare --import-adnerf AD-NeRF/dataset/Obama --out data/obama', 'import preprocessed data')
      .check((argv) => {
        if (!argv.out) throw new Error('prepare needs --out DIR');
        if (!argv.video && !argv['import-adnerf']) throw new Error('prepare needs a VIDEO (or --import-adnerf SRC)');
        if (argv.video && argv['import-adnerf']) throw new Error('prepare takes a VIDEO or --import-adnerf SRC, not both');
        if (!Number.isInteger(argv.size) || argv.size < 64) throw new Error(`prepare: --size must be an integer ≥ 64, got ${argv.size}`);
        if (!(argv.fov > 5 && argv.fov < 170)) throw new Error(`prepare: --fov must be between 5 and 170 degrees, got ${argv.fov}`);
        return true;
      }) as never,
  handler: async (argv) => {
    const log = (line: string) => console.log(`prepare: ${line}`);
    if (argv['import-adnerf']) {
      const report = importAdnerf(argv['import-adnerf'], argv.out!, { cropSize: argv['crop-size'], log });
      log(`${report.frameCount} frames (${report.width}×${report.height}) imported into ${argv.out}`);
    } else {
      const result = await prepareVideo({
        video: argv.video!, out: argv.out!, size: argv.size, seconds: argv.seconds, fov: argv.fov, smooth: argv.smooth,
        minSeconds: argv['min-seconds'], cropSize: argv['crop-size'],
      });
      if (!result.completed) return;
    }
    if (argv['contact-sheet']) log(`contact sheet: ${writePrepareSheet(argv.out!)}`);
  },
};
