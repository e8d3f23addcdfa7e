import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PNG } from 'pngjs';
import { afterAll, describe, expect, it } from 'vitest';
import { main } from '../src/cli/main.ts';
import { loadClip } from '../src/data/format.ts';
import { readSentences, squareCrop } from '../src/data/synth/generate.ts';
import { festivalAvailable } from '../src/data/synth/tts.ts';

const tmp = mkdtempSync(join(tmpdir(), 'nerfad-synth-cli-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

function capture() {
  const out: string[] = [], err: string[] = [];
  return { io: { out: (t: string) => void out.push(t), err: (t: string) => void err.push(t) }, out, err };
}

describe('nerfad synth (command line)', () => {
  it('asks for --photo, --text and --out', async () => {
    const c = capture();
    expect(await main(['synth'], c.io)).toBe(1);
    expect(c.err.join('')).toMatch(/synth needs --photo, --text and --out/);
  });
  it('says clearly when the photo has no face', async () => {
    const png = new PNG({ width: 128, height: 128 });
    for (let i = 0; i < 128 * 128; i++) png.data.set([200, 180, (i * 7) % 255, 255], i * 4);
    writeFileSync(join(tmp, 'wall.png'), PNG.sync.write(png));
    writeFileSync(join(tmp, 's.txt'), '# a comment\nHello.\n\n');
    const c = capture();
    expect(await main(['synth', '--photo', join(tmp, 'wall.png'), '--text', join(tmp, 's.txt'), '--out', join(tmp, 'o')], c.io)).toBe(1);
    // Without festival the command stops before looking at the photo, with its own clear message.
    expect(c.err.join('')).toMatch(festivalAvailable() ? /no face found in .*wall\.png/ : /`festival` is not installed; run `bash scripts\/setup-synth.sh`/);
  }, 60_000);
  it('reads sentences one per line, skipping blanks and comments, and rejects an empty file', () => {
    writeFileSync(join(tmp, 'a.txt'), '# c\nOne.\n\n  Two.  \n');
    expect(readSentences(join(tmp, 'a.txt'))).toEqual(['One.', 'Two.']);
    writeFileSync(join(tmp, 'b.txt'), '# only a comment\n');
    expect(() => readSentences(join(tmp, 'b.txt'))).toThrow(/holds no sentences/);
  });
  it('crops a square around the face that stays inside the image', () => {
    const face = { mesh: [], box: [300, 40, 120, 150] as [number, number, number, number], score: 1, yaw: 0, pitch: 0, roll: 0 };
    const [x0, y0, side] = squareCrop(640, 480, face);
    expect(side).toBe(390);
    expect(x0 + side).toBeLessThanOrEqual(640);
    expect(y0).toBeGreaterThanOrEqual(0);
    expect(x0).toBeLessThanOrEqual(300);
    expect(x0 + side).toBeGreaterThanOrEqual(420);
  });
  const festival = festivalAvailable();
  if (!festival) console.log('skipping the end-to-end synth test: festival is not installed (bash scripts/setup-synth.sh)');
  it.skipIf(!festival)('makes a loadable clip end to end from the portrait and a sentence', async () => {
    writeFileSync(join(tmp, 'one.txt'), 'Amazing grace.\n');
    const out = join(tmp, 'e2e'), c = capture();
    const code = await main(['synth', '--photo', 'assets/grace-hopper-512.jpg', '--text', join(tmp, 'one.txt'), '--out', out, '--size', '64', '--seed', '9'], c.io);
    expect(code, c.err.join('')).toBe(0);
    const clip = loadClip(out);
    expect(clip.frameCount).toBeGreaterThan(10);
    expect(clip.info.width).toBe(64);
  }, 120_000);
});
