/**
 * `prepareVideo` against ground truth: the first 6 s of the shipped synthetic talking head (assets/default-clip,
 * re-rendered here from its recipe: frames, exact landmarks, AUs and head poses) are encoded as an H.264 video with
 * its speech, prepared, and compared with what the renderer knows. The synthetic landmarks come from the same
 * MediaPipe mesh topology Human tracks, so the landmark check is favourable to us; poses and AUs are not.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AU_NAMES, loadClip, type Clip } from '../src/data/format.ts';
import { ensureFfmpeg } from './fixtures/prepare-ffmpeg.ts';
import { prepareVideo } from '../src/data/prepare/prepare.ts';
import { matrixToQuat, quatToMatrix } from '../src/data/prepare/pose.ts';
import { prepare as synthScene, readRecipe } from '../src/data/synth/generate.ts';
import { encodePng } from '../src/data/synth/image.ts';
import { frameGeometry, renderFrame } from '../src/data/synth/scene.ts';

const SECONDS = 6, FPS = 25, N = SECONDS * FPS;
const skip = ensureFfmpeg();
if (skip) console.warn(`prepare-synth tests skipped: ${skip}`);

const root = mkdtempSync(join(tmpdir(), 'nerfad-prepare-synth-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

const corr = (x: number[], y: number[]) => {
  const mx = x.reduce((a, b) => a + b) / x.length, my = y.reduce((a, b) => a + b) / y.length;
  let sxy = 0, sxx = 0, syy = 0;
  for (let i = 0; i < x.length; i++) { sxy += (x[i]! - mx) * (y[i]! - my); sxx += (x[i]! - mx) ** 2; syy += (y[i]! - my) ** 2; }
  return sxy / Math.sqrt(sxx * syy);
};

describe.skipIf(!!skip)('prepare on a synthetic talking head with known geometry', () => {
  const truth = { landmarks: [] as [number, number][][], aus: [] as Record<string, number>[], c2w: [] as number[][] };
  let clip: Clip;

  beforeAll(async () => {
    const { recipe, portrait, audio } = readRecipe('assets/default-clip');
    const { scene, animation } = synthScene(recipe, portrait, audio.length);
    mkdirSync(join(root, 'frames'));
    for (let f = 0; f < N; f++) {
      const g = frameGeometry(scene, animation.aus[f]!, animation.head[f]!);
      truth.landmarks.push(g.landmarks); truth.aus.push(animation.aus[f]!); truth.c2w.push(g.c2w);
      writeFileSync(join(root, 'frames', `${String(f).padStart(6, '0')}.png`), encodePng(renderFrame(scene, animation.aus[f]!, animation.head[f]!, g).image));
    }
    const video = join(root, 'synth.mp4');
    const r = spawnSync('ffmpeg', ['-v', 'error', '-y', '-framerate', '25', '-i', join(root, 'frames', '%06d.png'), '-i', 'assets/default-clip/audio.wav',
      '-t', String(SECONDS), '-c:v', 'libx264', '-crf', '18', '-pix_fmt', 'yuv420p', '-c:a', 'aac', video], { encoding: 'utf8' });
    expect(r.stderr).toBe('');
    // The synthetic face is ~50 px wide in its 128-px frames: below the default minimum, so lower it here.
    const result = await prepareVideo({ video, out: join(root, 'clip'), size: recipe.size, minFacePixels: 32, write: () => {} });
    expect(result.completed).toBe(true);
    clip = loadClip(join(root, 'clip'));
  }, 240_000);

  it('keeps the frame geometry (the crop is the whole 128-px frame) and finds the landmarks within a pixel', () => {
    expect(clip.frameCount).toBe(N);
    let sum = 0, lips = 0;
    for (let f = 0; f < N; f++) {
      const lm = clip.landmarks(f);
      for (let l = 0; l < 68; l++) {
        const e = Math.hypot(lm[l * 2]! - truth.landmarks[f]![l]![0], lm[l * 2 + 1]! - truth.landmarks[f]![l]![1]);
        sum += e; if (l >= 48) lips += e;
      }
    }
    expect(sum / (N * 68)).toBeLessThan(1.2);          // measured 0.66 px
    expect(lips / (N * 20)).toBeLessThan(1.2);         // measured 0.63 px
  });

  it('AU25 and AU26 follow the rendered mouth, AU45 the blinks', () => {
    const series = (name: string) => [Array.from({ length: N }, (_, f) => clip.aus(f)[AU_NAMES.indexOf(name as never)]!), truth.aus.map((a) => a[name]!)] as const;
    const [got25, want25] = series('AU25'), [got26, want26] = series('AU26'), [got45, want45] = series('AU45');
    console.log(`AU correlation with the renderer's: ${AU_NAMES.map((name) => `${name} ${corr(...series(name)).toFixed(2)}`).join(', ')}`);
    expect(corr(got25, want25)).toBeGreaterThan(0.7);   // measured 0.90
    expect(corr(got26, want26)).toBeGreaterThan(0.4);   // measured 0.57 (0.40 from the image landmarks, not frontalised)
    if (Math.max(...want45) > 2) expect(corr(got45, want45)).toBeGreaterThan(0.3);   // measured 0.49
    // AU10, AU14 and AU20 are not checked: measured 0.21, −0.06 and 0.06 — the 2D geometry at 128 px barely sees them
  });

  it('head rotation matches the renderer\'s within about a degree, up to the fixed choice of head axes', () => {
    // Our head frame differs from the renderer's by a fixed rotation W (R_got = W R_truth for the c2w rotations):
    // estimate W as the normalised mean quaternion of R_got R_truthᵀ over the frames, then compare frame by frame.
    const rot = (m: ArrayLike<number>) => [0, 1, 2].flatMap((r) => [m[r * 4]!, m[r * 4 + 1]!, m[r * 4 + 2]!]);
    const mul = (A: number[], B: number[], transposeB = false) => Array.from({ length: 9 }, (_, i) =>
      [0, 1, 2].reduce((s, k) => s + A[Math.floor(i / 3) * 3 + k]! * (transposeB ? B[(i % 3) * 3 + k]! : B[k * 3 + (i % 3)]!), 0));
    const angle = (A: number[], B: number[]) => {
      let trace = 0;
      for (let i = 0; i < 9; i++) trace += A[i]! * B[i]!;
      return (Math.acos(Math.max(-1, Math.min(1, (trace - 1) / 2))) * 180) / Math.PI;
    };
    const got = Array.from({ length: N }, (_, f) => rot(clip.pose(f))), want = truth.c2w.map(rot);
    const q = [0, 0, 0, 0];
    for (let f = 0; f < N; f++) {
      const w = matrixToQuat(mul(got[f]!, want[f]!, true));
      const sign = f === 0 || w.reduce((s, v, k) => s + v * q[k]!, 0) >= 0 ? 1 : -1;
      w.forEach((v, k) => { q[k]! += sign * v; });
    }
    const norm = Math.hypot(...q), W = quatToMatrix(q.map((v) => v / norm));
    const identity = [1, 0, 0, 0, 1, 0, 0, 0, 1];
    let error = 0, motion = 0;
    for (let f = 0; f < N; f++) {
      error += angle(got[f]!, mul(W, want[f]!)) / N;
      motion = Math.max(motion, angle(mul(want[0]!, want[f]!, true), identity));
    }
    console.log(`head rotation: mean error ${error.toFixed(2)}°, rendered motion up to ${motion.toFixed(2)}°`);
    expect(motion).toBeGreaterThan(1);                   // the rendered head does turn
    expect(error).toBeLessThan(1.2);                     // measured 0.82° (1.17° when the jaw points were fitted too)
  });
});
