/**
 * Ground truth of the synthetic speaker: landmarks lie on the rendered mesh, AU25/AU26 follow the mouth opening
 * measured in the image, audio and mouth are in sync within one frame, eyelids close on AU45, the head moves while
 * the torso/background stays, and the written clip loads with the same ground truth. Runs on the shipped default
 * clip's recipe (no TTS needed); renders only the frames it looks at.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PNG } from 'pngjs';
import { afterAll, describe, expect, it } from 'vitest';
import { loadClip } from '../src/data/format.ts';
import type { AuFrame, HeadMotion } from '../src/data/synth/animation.ts';
import { detectPortraitFace } from '../src/data/synth/face-mesh.ts';
import { DEFAULT_CLIP_DIR, ensureClipImages, prepare, readRecipe, renderClip, type Recipe } from '../src/data/synth/generate.ts';
import { decodeImageFile, resizeImage, sampleBilinear } from '../src/data/synth/image.ts';
import { IBUG68_FROM_MESH as IBUG } from '../src/data/synth/mesh-topology.ts';
import { frameGeometry, renderFrame, type RenderedFrame } from '../src/data/synth/scene.ts';
import { generateRaysReference } from '../src/kernels/render/rays.ts';

const { recipe, portrait, audio } = readRecipe(DEFAULT_CLIP_DIR);
const { scene, animation, frameCount } = prepare(recipe, portrait, audio.length);
const S = scene.size;
const still: HeadMotion = { yaw: 0, pitch: 0, roll: 0, tx: 0, ty: 0, tz: 0 };
const rest: AuFrame = { AU10: 0, AU14: 0, AU20: 0, AU25: 0, AU26: 0, AU45: 0 };
const tmp = mkdtempSync(join(tmpdir(), 'nerfad-synth-test-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const lum = (d: Float64Array, i: number) => 0.299 * d[i]! + 0.587 * d[i + 1]! + 0.114 * d[i + 2]!;

/** Mouth opening measured in the image: dark (cavity) or grey-white (teeth) pixels inside the lip landmarks' box. */
function mouthOpening(frame: RenderedFrame): number {
  const lips = frame.landmarks.slice(48, 68);
  const x0 = Math.floor(Math.min(...lips.map((p) => p[0]))), x1 = Math.ceil(Math.max(...lips.map((p) => p[0])));
  const y0 = Math.floor(Math.min(...lips.map((p) => p[1]))), y1 = Math.ceil(Math.max(...lips.map((p) => p[1])));
  let count = 0;
  for (let y = y0; y <= y1; y++) for (let x = x0; x <= x1; x++) {
    const i = (y * S + x) * 3, d = frame.image.data;
    const sat = Math.max(d[i]!, d[i + 1]!, d[i + 2]!) - Math.min(d[i]!, d[i + 1]!, d[i + 2]!);
    if (lum(d, i) < 0.2 || (sat < 0.2 && lum(d, i) > 0.45)) count++;
  }
  return count;
}

const zscore = (a: number[]) => {
  const m = a.reduce((x, y) => x + y, 0) / a.length;
  const sd = Math.sqrt(a.reduce((x, y) => x + (y - m) ** 2, 0) / a.length) || 1;
  return a.map((v) => (v - m) / sd);
};
/** Correlation of a[i] with b[i + lag]. */
function laggedCorrelation(a: number[], b: number[], lag: number): number {
  const za = zscore(a), zb = zscore(b);
  let s = 0, n = 0;
  for (let i = 0; i < a.length; i++) { const j = i + lag; if (j >= 0 && j < b.length) { s += za[i]! * zb[j]!; n++; } }
  return s / n;
}
const bestLag = (a: number[], b: number[], span: number) => {
  let best = 0, bestValue = -Infinity;
  for (let lag = -span; lag <= span; lag++) { const c = laggedCorrelation(a, b, lag); if (c > bestValue) { bestValue = c; best = lag; } }
  return { lag: best, value: bestValue };
};

describe('synth: landmarks lie on the rendered mesh', () => {
  // Frames with the largest yaw, pitch and roll, an open mouth, and a few ordinary ones.
  const pick = (key: keyof HeadMotion) => animation.head.reduce((best, h, f) => (Math.abs(h[key]) > Math.abs(animation.head[best]![key]) ? f : best), 0);
  const openest = animation.aus.reduce((best, a, f) => (a.AU26 > animation.aus[best]!.AU26 ? f : best), 0);
  const frames = [...new Set([0, pick('yaw'), pick('pitch'), pick('roll'), openest, 777, frameCount - 1])];
  const rendered = frames.map((f) => renderFrame(scene, animation.aus[f]!, animation.head[f]!));
  const texture = resizeImage(portrait, S, S);
  const texel = new Float64Array(3), pixel = new Float64Array(3);

  it('puts inner landmarks inside the face mask and contour landmarks on its edge', () => {
    for (const frame of rendered) {
      const mask = (x: number, y: number) => frame.faceMask[Math.floor(y) * S + Math.floor(x)]!;
      frame.landmarks.forEach(([x, y], l) => {
        if (l >= 17) {
          expect(mask(x, y), `landmark ${l}`).toBeGreaterThan(0.4);
        } else {
          let inside = 0, outside = 0;
          for (let dy = -2; dy <= 2; dy++) for (let dx = -2; dx <= 2; dx++) (mask(x + dx, y + dy) > 0.5 ? inside++ : outside++);
          expect(inside, `contour landmark ${l} has face next to it`).toBeGreaterThan(0);
          expect(outside, `contour landmark ${l} has non-face next to it`).toBeGreaterThan(0);
        }
      });
    }
  });

  it('finds the portrait texture of the landmark vertex at the landmark (and not 2 px away)', () => {
    let atLandmark = 0, displaced = 0, n = 0;
    const topology = scene.head;
    for (const frame of rendered) {
      frame.landmarks.forEach(([x, y], l) => {
        if (l < 17 || (l >= 48)) return; // contour and lips: edges and moving parts
        const v = IBUG[l]!;
        sampleBilinear(texture, (topology.uv[v * 2]! * S) / topology.photoSize, (topology.uv[v * 2 + 1]! * S) / topology.photoSize, texel);
        sampleBilinear(frame.image, x, y, pixel);
        atLandmark += Math.abs(texel[0]! - pixel[0]!) + Math.abs(texel[1]! - pixel[1]!) + Math.abs(texel[2]! - pixel[2]!);
        for (const [dx, dy] of [[2, 0], [-2, 0], [0, 2], [0, -2]]) {
          sampleBilinear(frame.image, x + dx!, y + dy!, pixel);
          displaced += (Math.abs(texel[0]! - pixel[0]!) + Math.abs(texel[1]! - pixel[1]!) + Math.abs(texel[2]! - pixel[2]!)) / 4;
        }
        n++;
      });
    }
    expect(n).toBeGreaterThan(100);
    console.log(`landmark texture error ${(atLandmark / n).toFixed(3)} vs ${(displaced / n).toFixed(3)} two pixels away`);
    expect(atLandmark / n).toBeLessThan(0.12);
    expect(atLandmark / n).toBeLessThan(0.6 * (displaced / n));
  });
});

describe('synth: AU25/AU26 follow the mouth opening in the image', () => {
  it('opens monotonically with AU25 = AU26 at a fixed pose, closed at 0', () => {
    const openings = [0, 1, 2, 3, 4, 5].map((a) => mouthOpening(renderFrame(scene, { ...rest, AU25: a, AU26: a }, still)));
    expect(openings[0]).toBeLessThanOrEqual(3);
    for (let k = 1; k < openings.length; k++) expect(openings[k]!).toBeGreaterThan(openings[k - 1]!);
    expect(openings[5]!).toBeGreaterThan(40);
  });
  it('correlates with AU25 + AU26 over the clip (Pearson > 0.9)', () => {
    const measured: number[] = [], au: number[] = [];
    for (let f = 0; f < 250; f++) {
      measured.push(mouthOpening(renderFrame(scene, animation.aus[f]!, animation.head[f]!)));
      au.push(animation.aus[f]!.AU25 + animation.aus[f]!.AU26);
    }
    expect(laggedCorrelation(au, measured, 0)).toBeGreaterThan(0.9);
  });
});

describe('synth: audio and mouth in sync', () => {
  it('peaks the audio-envelope / mouth-opening correlation within one frame of zero lag', () => {
    const hop = 16000 / recipe.fps, envelope: number[] = [], opening: number[] = [];
    for (let f = 0; f < 300; f++) {
      let s = 0;
      for (let i = f * hop; i < (f + 1) * hop; i++) s += audio[i]! ** 2;
      envelope.push(Math.sqrt(s / hop));
      opening.push(mouthOpening(renderFrame(scene, animation.aus[f]!, animation.head[f]!)));
    }
    const sync = bestLag(envelope, opening, 6);
    expect(Math.abs(sync.lag)).toBeLessThanOrEqual(1);
    expect(sync.value).toBeGreaterThan(0.4);
    // The measurement can fail: a mouth delayed by 4 frames is found 4 frames late.
    const delayed = [0, 0, 0, 0, ...opening.slice(0, -4)];
    expect(Math.abs(bestLag(envelope, delayed, 6).lag - 4)).toBeLessThanOrEqual(1);
  });
});

describe('synth: eyelids, rigid head, static torso, determinism', () => {
  it('closes the eyelids on AU45 = 5', () => {
    const open = frameGeometry(scene, rest, still).landmarks, shut = frameGeometry(scene, { ...rest, AU45: 5 }, still).landmarks;
    const gap = (lm: [number, number][]) => Math.hypot(lm[37]![0] - lm[41]![0], lm[37]![1] - lm[41]![1]) + Math.hypot(lm[44]![0] - lm[46]![0], lm[44]![1] - lm[46]![1]);
    expect(gap(shut)).toBeLessThan(0.15 * gap(open));
  });
  it('moves the lips as AU10, AU14 and AU20 say', () => {
    const base = frameGeometry(scene, rest, still).landmarks;
    const width = (lm: [number, number][]) => lm[54]![0] - lm[48]![0];
    const stretched = frameGeometry(scene, { ...rest, AU20: 5 }, still).landmarks;
    expect(width(stretched)).toBeGreaterThan(width(base) * 1.05);
    const raised = frameGeometry(scene, { ...rest, AU10: 5 }, still).landmarks;
    expect(raised[51]![1]).toBeLessThan(base[51]![1] - 0.3); // upper lip up (smaller y)
    expect(Math.abs(raised[57]![1] - base[57]![1])).toBeLessThan(0.05); // lower lip stays
    // AU14 pulls the corners back (deeper): the corner vertices move away from the camera.
    const corner = 61, dimpled = frameGeometry(scene, { ...rest, AU14: 5 }, still), plain = frameGeometry(scene, rest, still);
    expect(dimpled.camera[corner * 3 + 2]!).toBeLessThan(plain.camera[corner * 3 + 2]! - 1e-3);
  });
  it('moves the head with the pose while pixels away from the head stay the same', () => {
    const a = renderFrame(scene, rest, still), b = renderFrame(scene, rest, { ...still, yaw: 4, pitch: -2, roll: 1.5 });
    // Pixels within 6 px of either head mask may see the head's transparent fade-out ring; the rest must not change.
    const near = new Uint8Array(S * S);
    for (let y = 0; y < S; y++) for (let x = 0; x < S; x++) {
      if (a.headMask[y * S + x]! === 0 && b.headMask[y * S + x]! === 0) continue;
      for (let dy = -6; dy <= 6; dy++) for (let dx = -6; dx <= 6; dx++) {
        const yy = y + dy, xx = x + dx;
        if (yy >= 0 && yy < S && xx >= 0 && xx < S) near[yy * S + xx] = 1;
      }
    }
    let moved = 0, staticDiff = 0, staticCount = 0;
    for (let i = 0; i < S * S; i++) {
      const d = Math.abs(a.image.data[i * 3]! - b.image.data[i * 3]!);
      if (near[i]) { if (d > 0.05) moved++; } else { staticDiff = Math.max(staticDiff, d); staticCount++; }
    }
    expect(staticCount).toBeGreaterThan(S * S * 0.3);
    expect(staticDiff).toBeLessThan(1e-9);
    expect(moved).toBeGreaterThan(100);
    // The pose is exact: landmarks move like the rigid transform says (nose tip 30 shifts right for +yaw).
    expect(b.landmarks[30]![0]).toBeGreaterThan(a.landmarks[30]![0] + 1);
  });
  it('is deterministic for a recipe and changes with the seed', () => {
    const again = prepare(recipe, portrait, audio.length);
    expect(again.animation).toEqual(animation);
    const other = prepare({ ...recipe, seed: recipe.seed + 1 }, portrait, audio.length);
    expect(other.animation.head[100]!.yaw).not.toBe(animation.head[100]!.yaw);
    expect(other.animation.aus[100]!.AU26).toBe(animation.aus[100]!.AU26);
  });
  it('matches the ground truth shipped with the default clip', () => {
    const shipped = loadClip(DEFAULT_CLIP_DIR, { checkImages: false });
    expect(shipped.frameCount).toBe(frameCount);
    for (const f of [0, 500, frameCount - 1]) {
      const g = frameGeometry(scene, animation.aus[f]!, animation.head[f]!);
      const lm = shipped.landmarks(f);
      g.landmarks.forEach(([x, y], l) => { expect(lm[l * 2]).toBeCloseTo(x, 3); expect(lm[l * 2 + 1]).toBeCloseTo(y, 3); });
      const pose = shipped.pose(f);
      g.c2w.forEach((v, k) => expect(pose[k]).toBeCloseTo(v, 5));
    }
  });
});

describe('synth: camera convention matches the NeRF ray generator', () => {
  it('casts the ray of a landmark pixel through the landmark vertex in the world (head) frame', () => {
    const f = 321, g = frameGeometry(scene, animation.aus[f]!, animation.head[f]!);
    const c2w = new Float64Array(12);
    c2w.set(g.c2w.slice(0, 12));
    for (const l of [30, 36, 45, 48, 54, 8]) {
      const [x, y] = g.landmarks[l]!, v = IBUG[l]!;
      const world = [g.local[v * 3]!, g.local[v * 3 + 1]!, g.local[v * 3 + 2]!];
      const distanceFromRay = (px: number, py: number) => {
        const { origin, direction } = generateRaysReference([py * S + px], [0], c2w, S, scene.intrinsics);
        const d = [direction[0]!, direction[1]!, direction[2]!], n = Math.hypot(...d);
        const w = [world[0]! - origin[0]!, world[1]! - origin[1]!, world[2]! - origin[2]!];
        const t = (w[0]! * d[0]! + w[1]! * d[1]! + w[2]! * d[2]!) / (n * n);
        return { distance: Math.hypot(w[0]! - t * d[0]!, w[1]! - t * d[1]!, w[2]! - t * d[2]!), depth: t };
      };
      const hit = distanceFromRay(Math.floor(x), Math.floor(y));
      const pixelFootprint = hit.depth / scene.intrinsics.fx;
      expect(hit.distance, `landmark ${l}`).toBeLessThan(0.75 * pixelFootprint);
      expect(distanceFromRay(Math.floor(x) + 3, Math.floor(y)).distance).toBeGreaterThan(2 * pixelFootprint);
    }
  });
});

describe('synth: clip writing', () => {
  it('writes a clip that loads with the same ground truth (64×64, 0.6 s)', () => {
    const small: Recipe = { ...recipe, size: 64, supersample: 2, name: 'small' };
    const dir = join(tmp, 'small');
    const { frameCount: n } = renderClip(dir, small, portrait, audio.subarray(0, 16000 * 0.6));
    expect(n).toBe(15);
    const clip = loadClip(dir);
    expect(clip.info.width).toBe(64);
    const prepared = prepare(small, portrait, 16000 * 0.6);
    const g = frameGeometry(prepared.scene, prepared.animation.aus[7]!, prepared.animation.head[7]!);
    expect(clip.landmarks(7)[60]).toBeCloseTo(g.landmarks[30]![0], 3);
    const head = clip.mask('head', 7), face = clip.mask('face', 7), lip = clip.mask('lip', 7);
    const count = (m: { data: Uint8Array }) => m.data.reduce((s, v) => s + (v > 0 ? 1 : 0), 0);
    expect(count(head)).toBeGreaterThan(count(face));
    expect(count(face)).toBeGreaterThan(count(lip));
    expect(count(lip)).toBeGreaterThan(0);
    expect(clip.aus(7)[3]).toBeCloseTo(prepared.animation.aus[7]!.AU25, 5);

    // Without its images the clip re-renders them byte-identically from recipe.json, portrait.png and audio.wav.
    const before = readFileSync(join(dir, 'frames/000007.png'));
    expect(ensureClipImages(dir)).toBe(false);
    rmSync(join(dir, 'frames'), { recursive: true });
    rmSync(join(dir, 'masks'), { recursive: true });
    expect(ensureClipImages(dir)).toBe(true);
    expect(readFileSync(join(dir, 'frames/000007.png')).equals(before)).toBe(true);
    expect(loadClip(dir).frameCount).toBe(15);
  });
});

describe('synth: portrait checks', () => {
  it('finds the one frontal face of the shipped portrait', async () => {
    const face = await detectPortraitFace(decodeImageFile('assets/grace-hopper-512.jpg'), 'grace-hopper-512.jpg');
    expect(face.mesh).toHaveLength(468);
  }, 60_000);
  it('gives a clear error for a photo with two faces', async () => {
    const grace = resizeImage(decodeImageFile('assets/grace-hopper-512.jpg'), 256, 256);
    const png = new PNG({ width: 512, height: 256 });
    for (let y = 0; y < 256; y++) for (let x = 0; x < 512; x++) {
      const i = (y * 256 + (x % 256)) * 3;
      png.data.set([grace.data[i]! * 255, grace.data[i + 1]! * 255, grace.data[i + 2]! * 255, 255], (y * 512 + x) * 4);
    }
    const file = join(tmp, 'two.png');
    writeFileSync(file, PNG.sync.write(png));
    await expect(detectPortraitFace(decodeImageFile(file), 'two.png')).rejects.toThrow(/2 faces found in two.png/);
  }, 60_000);
  it('gives a clear error for an image without a face', async () => {
    const png = new PNG({ width: 160, height: 160 });
    for (let i = 0; i < 160 * 160; i++) png.data.set([30 + (i % 160), 90, 140 + ((i / 160) | 0) / 2, 255], i * 4);
    const file = join(tmp, 'noface.png');
    writeFileSync(file, PNG.sync.write(png));
    await expect(detectPortraitFace(decodeImageFile(file), 'noface.png')).rejects.toThrow(/no face found in noface.png/);
  }, 60_000);
});
