import { mkdtempSync, readFileSync, rmSync, unlinkSync, writeFileSync, copyFileSync, cpSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  AU_NAMES, Clip, DatasetError, loadClip, MASK_KINDS, writeClip, type ClipData, type Image8,
} from '../src/data/format.ts';
import { encodeWav } from '../src/data/wav.ts';
import { MEL_BANDS } from '../src/data/audio-features.ts';
import { Rng } from '../src/tensor/random.ts';

const W = 32, H = 24, N = 6, FPS = 25;

function randomImage(rng: Rng, channels: 1 | 3): Image8 {
  return { width: W, height: H, channels, data: Uint8Array.from({ length: W * H * channels }, () => rng.int(256)) };
}

/** A small synthetic clip: rotations about a tilted axis, landmarks/AUs/boxes in range, random pixels. */
function syntheticClip(seed = 1): ClipData {
  const rng = new Rng(seed);
  const poses = new Float32Array(N * 16), landmarks = new Float32Array(N * 68 * 2);
  const aus = new Float32Array(N * 6), boxes = new Float32Array(N * 12);
  for (let f = 0; f < N; f++) {
    const yaw = 0.1 * (f - 2), pitch = -0.05 * f;
    const cy = Math.cos(yaw), sy = Math.sin(yaw), cp = Math.cos(pitch), sp = Math.sin(pitch);
    // R = Ry(yaw) · Rx(pitch), t = (0.01 f, 0, 1)
    const R = [[cy, sy * sp, sy * cp], [0, cp, -sp], [-sy, cy * sp, cy * cp]];
    for (let r = 0; r < 3; r++) for (let c = 0; c < 3; c++) poses[f * 16 + r * 4 + c] = R[r]![c]!;
    poses[f * 16 + 3] = 0.01 * f; poses[f * 16 + 7] = 0; poses[f * 16 + 11] = 1; poses[f * 16 + 15] = 1;
    for (let l = 0; l < 68; l++) {
      landmarks[(f * 68 + l) * 2] = rng.range(4, W - 4);
      landmarks[(f * 68 + l) * 2 + 1] = rng.range(4, H - 4);
    }
    for (let a = 0; a < 6; a++) aus[f * 6 + a] = rng.range(0, 5);
    boxes.set([4, 2, 28, 22, 10, 14, 22, 19, 6, 2, 26, 22], f * 12);
  }
  const audio = Float32Array.from({ length: (N * 16000) / FPS }, (_, i) => 0.3 * Math.sin((2 * Math.PI * 220 * i) / 16000));
  const frames = Array.from({ length: N }, () => randomImage(rng, 3));
  const torso = Array.from({ length: N }, () => randomImage(rng, 3));
  const masks = { head: Array.from({ length: N }, () => randomImage(rng, 1)), face: (f: number) => ({ ...frames[f]!, channels: 1 as const, data: frames[f]!.data.filter((_, i) => i % 3 === 0) }), lip: Array.from({ length: N }, () => randomImage(rng, 1)) };
  return {
    info: {
      name: 'synthetic', fps: FPS, frameCount: N, width: W, height: H, intrinsics: { fx: 40, fy: 40, cx: W / 2, cy: H / 2 },
      cropSize: 16, split: { train: [0, 1, 2], val: [4, 5] }, source: 'test/data-format.test.ts',
    },
    tracks: { poses, landmarks, aus, boxes },
    audio, background: randomImage(rng, 3), frames, torso, masks,
  };
}

let root: string;
let good: string;
let counter = 0;
const clip = syntheticClip();

beforeAll(() => {
  root = mkdtempSync(join(tmpdir(), 'nerfad-data-format-'));
  good = join(root, 'good');
  writeClip(good, clip);
});
afterAll(() => rmSync(root, { recursive: true, force: true }));

/** A fresh copy of the good clip, changed by `breakIt`; returns the loader's error. */
function brokenClip(breakIt: (dir: string) => void): DatasetError {
  const dir = join(root, `broken-${counter++}`);
  cpSync(good, dir, { recursive: true });
  breakIt(dir);
  try {
    loadClip(dir);
  } catch (e) {
    expect(e).toBeInstanceOf(DatasetError);
    return e as DatasetError;
  }
  throw new Error('loadClip accepted a broken clip');
}

const editJson = (dir: string, edit: (m: Record<string, any>) => void) => {
  const m = JSON.parse(readFileSync(join(dir, 'clip.json'), 'utf8'));
  edit(m);
  writeFileSync(join(dir, 'clip.json'), JSON.stringify(m));
};
const editF32 = (dir: string, file: string, index: number, value: number) => {
  const bytes = readFileSync(join(dir, file));
  bytes.writeFloatLE(value, index * 4);
  writeFileSync(join(dir, file), bytes);
};

describe('dataset format: writer → loader round trip', () => {
  it('loads back exactly what was written', () => {
    const loaded = loadClip(good);
    expect(loaded).toBeInstanceOf(Clip);
    expect(loaded.info).toEqual(clip.info);
    expect(loaded.tracks.poses).toEqual(clip.tracks.poses);
    expect(loaded.tracks.landmarks).toEqual(clip.tracks.landmarks);
    expect(loaded.tracks.aus).toEqual(clip.tracks.aus);
    expect(loaded.tracks.boxes).toEqual(clip.tracks.boxes);
    expect(loaded.audio.length).toBe(clip.audio.length);
    for (let i = 0; i < clip.audio.length; i++) expect(Math.abs(loaded.audio[i]! - clip.audio[i]!)).toBeLessThanOrEqual(1 / 32768);
    const frames = clip.frames as Image8[];
    for (let f = 0; f < N; f++) {
      expect(loaded.frame(f)).toEqual(frames[f]);
      expect(loaded.torso(f)).toEqual((clip.torso as Image8[])[f]);
      expect(loaded.mask('head', f)).toEqual(clip.masks.head instanceof Array ? clip.masks.head[f] : null);
      expect(loaded.mask('face', f).data).toEqual(frames[f]!.data.filter((_, i) => i % 3 === 0));
    }
    expect(loaded.background()).toEqual(clip.background);
    expect([...loaded.pose(3)]).toEqual([...clip.tracks.poses.subarray(48, 64)]);
    expect([...loaded.box('crop', 2)]).toEqual([6, 2, 26, 22]);
    expect(loaded.aus(5).length).toBe(AU_NAMES.length);
    expect(loaded.landmarks(1).length).toBe(136);
    expect(() => loaded.frame(N)).toThrow('clip synthetic: frame 6 is out of range (frame_count 6)');
    expect(loaded.audioFeatures().length).toBe(N * 16 * MEL_BANDS);
    expect(loaded.audioFeatures(80).length).toBe(N * 16 * 80);
    const manifest = readFileSync(join(good, 'clip.json'), 'utf8');
    expect(manifest).toContain('"format": "nerfad-clip"');
    expect(manifest).toContain('"train": [0,1,2]');
  });

  it('the writer refuses invalid data with the loader\'s messages', () => {
    const bad = syntheticClip();
    bad.tracks.aus[2 * 6 + 3] = 5.5;
    expect(() => writeClip(join(root, 'never'), bad)).toThrow('aus.f32: aus[2].AU25 = 5.5 is outside 0–5');
    const short = syntheticClip();
    short.audio = short.audio.subarray(0, 1000);
    expect(() => writeClip(join(root, 'never2'), short)).toThrow(/^audio\.wav: length is 1000 samples/);
    const wrongSize = syntheticClip();
    (wrongSize.frames as Image8[])[2] = { width: W + 1, height: H, channels: 3, data: new Uint8Array((W + 1) * H * 3) };
    expect(() => writeClip(join(root, 'never3'), wrongSize)).toThrow('frames/000002.png: size is 33×24, expected 32×24');
  });
});

describe('dataset format: the loader names the file and field of each problem', () => {
  it('missing frames', () => {
    expect(brokenClip((d) => unlinkSync(join(d, 'frames/000003.png'))).message)
      .toBe('frames/000003.png: file missing (frame_count is 6, frames/ holds 5 frame PNGs)');
    expect(brokenClip((d) => unlinkSync(join(d, 'masks/lip/000005.png'))).message)
      .toBe('masks/lip/000005.png: file missing (frame_count is 6, masks/lip/ holds 5 frame PNGs)');
    expect(brokenClip((d) => rmSync(join(d, 'torso'), { recursive: true })).message)
      .toBe('torso/: folder missing (expected 6 PNG files)');
    expect(brokenClip((d) => unlinkSync(join(d, 'background.png'))).message).toBe('background.png: file missing');
    expect(brokenClip((d) => unlinkSync(join(d, 'landmarks.f32'))).message).toBe('landmarks.f32: file missing');
    expect(brokenClip((d) => unlinkSync(join(d, 'audio.wav'))).message).toBe('audio.wav: file missing');
    const e = brokenClip((d) => unlinkSync(join(d, 'clip.json')));
    expect(e.message).toMatch(/^clip\.json: file missing \(is .* a nerfad clip directory\?\)$/);
    expect(e.file).toBe('clip.json');
  });

  it('mismatched counts', () => {
    expect(brokenClip((d) => editJson(d, (m) => { m.frame_count = 7; })).message)
      .toBe('poses.f32: is 384 bytes, expected 7 frames × 4×4 float32 = 448 bytes (it holds 6 frames: frame_count mismatch)');
    expect(brokenClip((d) => writeFileSync(join(d, 'aus.f32'), readFileSync(join(d, 'aus.f32')).subarray(0, 130))).message)
      .toBe('aus.f32: is 130 bytes, expected 6 frames × 6 float32 = 144 bytes (truncated or not float32)');
    expect(brokenClip((d) => copyFileSync(join(d, 'frames/000000.png'), join(d, 'frames/000006.png'))).message)
      .toBe('frames/: holds 7 frame PNGs but frame_count is 6');
    // Audio one and a half video frames short.
    expect(brokenClip((d) => writeFileSync(join(d, 'audio.wav'), encodeWav(clip.audio.subarray(0, clip.audio.length - 960), 16000))).message)
      .toBe('audio.wav: length is 2880 samples (0.180 s) but 6 frames at 25 fps last 0.240 s (3840 samples ± one frame)');
  });

  it('bad JSON and bad manifest fields', () => {
    expect(brokenClip((d) => writeFileSync(join(d, 'clip.json'), '{"format": "nerfad-clip", "version": 1,')).message)
      .toMatch(/^clip\.json: is not valid JSON \(.+\)$/);
    expect(brokenClip((d) => writeFileSync(join(d, 'clip.json'), '[1, 2]')).message).toBe('clip.json: must hold a JSON object, got [1,2]');
    expect(brokenClip((d) => editJson(d, (m) => { m.format = 'ad-nerf'; })).message).toBe('clip.json: format must be "nerfad-clip", got "ad-nerf"');
    expect(brokenClip((d) => editJson(d, (m) => { m.version = 2; })).message).toBe('clip.json: version 2 is newer than this loader (reads version 1)');
    expect(brokenClip((d) => editJson(d, (m) => { delete m.fps; })).message).toBe('clip.json: fps must be a positive number, got missing');
    expect(brokenClip((d) => editJson(d, (m) => { m.width = 32.5; })).message).toBe('clip.json: width must be a positive integer, got 32.5');
    expect(brokenClip((d) => editJson(d, (m) => { m.intrinsics.fy = -1; })).message).toBe('clip.json: intrinsics.fy must be positive, got -1');
    expect(brokenClip((d) => editJson(d, (m) => { m.intrinsics.cx = 40; })).message).toBe('clip.json: intrinsics.cx = 40 is outside the image width 0–32');
    expect(brokenClip((d) => editJson(d, (m) => { m.intrinsics.fx = 'forty'; })).message).toBe('clip.json: intrinsics.fx must be a finite number, got "forty"');
  });

  it('bad train/validation split', () => {
    expect(brokenClip((d) => editJson(d, (m) => { m.split.val = [4, 6]; })).message).toBe('clip.json: split.val[1] = 6 is out of range (frame_count 6)');
    expect(brokenClip((d) => editJson(d, (m) => { m.split.val = [2, 5]; })).message).toBe('clip.json: split frame 2 is in both split.train and split.val');
    expect(brokenClip((d) => editJson(d, (m) => { m.split.train = [0, 1, 1]; })).message).toBe('clip.json: split.train[2] = 1 is listed twice');
    expect(brokenClip((d) => editJson(d, (m) => { m.split.train = [0, 1.5]; })).message).toBe('clip.json: split.train[1] must be an integer frame index, got 1.5');
    expect(brokenClip((d) => editJson(d, (m) => { m.split.train = []; })).message).toBe('clip.json: split.train is empty');
    expect(brokenClip((d) => editJson(d, (m) => { delete m.split; })).message).toBe('clip.json: split must be an object {train: [...], val: [...]}, got missing');
  });

  it('NaN and invalid poses', () => {
    const e = brokenClip((d) => editF32(d, 'poses.f32', 4 * 16 + 5, NaN));
    expect(e.message).toBe('poses.f32: poses[4] contains NaN');
    expect(e.file).toBe('poses.f32');
    expect(e.field).toBe('poses[4]');
    expect(brokenClip((d) => editF32(d, 'poses.f32', 1 * 16 + 11, Infinity)).message).toBe('poses.f32: poses[1] contains Infinity');
    expect(brokenClip((d) => editF32(d, 'poses.f32', 2 * 16 + 0, 1.3)).message).toMatch(/^poses\.f32: poses\[2\] rotation is not orthonormal \(max \|RᵀR − I\| = 0\.\d+\)$/);
    expect(brokenClip((d) => {
      for (let r = 0; r < 3; r++) editF32(d, 'poses.f32', 3 * 16 + r * 4, -clip.tracks.poses[3 * 16 + r * 4]!);   // flip one axis
    }).message).toBe('poses.f32: poses[3] rotation has determinant -1.000 (a reflection, not a rotation)');
    expect(brokenClip((d) => editF32(d, 'poses.f32', 0 * 16 + 14, 0.5)).message).toBe('poses.f32: poses[0] last row is [0, 0, 0.5, 1], expected [0, 0, 0, 1]');
  });

  it('landmarks, AUs and boxes out of range', () => {
    expect(brokenClip((d) => editF32(d, 'landmarks.f32', (2 * 68 + 30) * 2 + 1, NaN)).message).toBe('landmarks.f32: landmarks[2] contains NaN');
    expect(brokenClip((d) => editF32(d, 'landmarks.f32', (2 * 68 + 30) * 2, 100)).message)
      .toMatch(/^landmarks\.f32: landmarks\[2\]\[30\] = \(100, [\d.]+\) is far outside the 32×24 image$/);
    expect(brokenClip((d) => editF32(d, 'aus.f32', 1 * 6 + 5, -0.5)).message).toBe('aus.f32: aus[1].AU45 = -0.5 is outside 0–5');
    expect(brokenClip((d) => editF32(d, 'aus.f32', 3 * 6 + 3, 7)).message).toBe('aus.f32: aus[3].AU25 = 7 is outside 0–5');
    expect(brokenClip((d) => editF32(d, 'boxes.f32', 2 * 12 + 2, 40)).message).toBe('boxes.f32: boxes[2].face = (4, 2, 40, 22) is not inside the 32×24 image');
    expect(brokenClip((d) => editF32(d, 'boxes.f32', 1 * 12 + 4, 23)).message).toBe('boxes.f32: boxes[1].lip = (23, 14, 22, 19) is empty or inverted (need x0 < x1, y0 < y1)');
    expect(brokenClip((d) => editF32(d, 'boxes.f32', 0 * 12 + 10, 24)).message)
      .toBe('boxes.f32: boxes[0].crop = (6, 2, 24, 22) is not square (18×20); the attention module takes square crops');
  });

  it('wrong audio rate, channels or file type', () => {
    expect(brokenClip((d) => writeFileSync(join(d, 'audio.wav'), encodeWav(new Float32Array((N * 44100) / FPS), 44100))).message)
      .toBe('audio.wav: sample rate is 44100 Hz, expected 16000 (resample with resample() from src/data/wav.ts)');
    expect(brokenClip((d) => writeFileSync(join(d, 'audio.wav'), encodeWav([clip.audio, clip.audio], 16000))).message)
      .toBe('audio.wav: channel count is 2, expected 1 (mono)');
    expect(brokenClip((d) => writeFileSync(join(d, 'audio.wav'), 'fLaC\u0000\u0000\u0000\u0022 not a wav at all')).message)
      .toBe('audio.wav: not a WAV file (expected "RIFF....WAVE" header, got "fLaC.... not")');
  });

  it('images of the wrong size, colour type or file type', () => {
    expect(brokenClip((d) => copyFileSync(join(d, 'frames/000002.png'), join(d, 'masks/face/000002.png'))).message)
      .toBe('masks/face/000002.png: colour type is RGB, expected 8-bit grayscale');
    expect(brokenClip((d) => copyFileSync(join(d, 'masks/head/000001.png'), join(d, 'torso/000001.png'))).message)
      .toBe('torso/000001.png: colour type is grayscale, expected RGB (or RGBA)');
    expect(brokenClip((d) => writeFileSync(join(d, 'frames/000004.png'), 'GIF89a......................')).message)
      .toBe('frames/000004.png: is not a PNG file');
    expect(brokenClip((d) => {
      const dir = join(root, `other-size-${counter}`);
      const other = syntheticClip(2);
      other.info = { ...other.info, width: 16, height: 16, intrinsics: { fx: 20, fy: 20, cx: 8, cy: 8 } };
      other.tracks.boxes = new Float32Array(N * 12).map((_, i) => [1, 1, 15, 15][i % 4]!);
      other.tracks.landmarks = other.tracks.landmarks.map((v) => v / 2);
      const shrink = (im: Image8): Image8 => ({ ...im, width: 16, height: 16, data: im.data.subarray(0, 16 * 16 * im.channels) });
      other.background = shrink(other.background);
      other.frames = (other.frames as Image8[]).map(shrink);
      other.torso = (other.torso as Image8[]).map(shrink);
      other.masks = { head: (other.masks.head as Image8[]).map(shrink), face: (other.masks.head as Image8[]).map(shrink), lip: (other.masks.lip as Image8[]).map(shrink) };
      writeClip(dir, other);
      copyFileSync(join(dir, 'background.png'), join(d, 'background.png'));
    }).message).toBe('background.png: size is 16×16, expected 32×24');
  });

  it('checkImages: false defers image checks to the read, with the same messages', () => {
    const dir = join(root, 'lazy');
    cpSync(good, dir, { recursive: true });
    unlinkSync(join(dir, 'frames/000003.png'));
    const lazy = loadClip(dir, { checkImages: false });
    expect(lazy.frame(2).width).toBe(W);
    expect(() => lazy.frame(3)).toThrow('frames/000003.png: file missing');
    for (const kind of MASK_KINDS) expect(lazy.mask(kind, 0).channels).toBe(1);
  });
});
