/**
 * The AD-NeRF/ER-NeRF importer on small layouts built here: tiny JPEG frames (jpeg-js), .lms landmark files, colour
 * parsing maps, RGBA or opaque torso images, an OpenFace au.csv, aud.wav and a .npy written by the test.
 */
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import jpeg from 'jpeg-js';
import { PNG } from 'pngjs';
import { afterAll, describe, expect, it } from 'vitest';
import { AU_NAMES, loadClip } from '../src/data/format.ts';
import { encodeWav } from '../src/data/wav.ts';
import { importAdnerf, ImportError } from '../src/data/import-adnerf.ts';
import { readNpy } from '../src/data/prepare/npy.ts';
import { main } from '../src/cli/main.ts';
import { templateLandmarks } from './fixtures/prepare-face.ts';

const W = 48, H = 40, N = 8, FPS = 25;
const root = mkdtempSync(join(tmpdir(), 'nerfad-import-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

/** A .npy writer (format 1.0, little-endian float32, C order). */
function npyBytes(shape: number[], values: Float32Array): Buffer {
  let header = `{'descr': '<f4', 'fortran_order': False, 'shape': (${shape.join(', ')}${shape.length === 1 ? ',' : ''}), }`;
  header += ' '.repeat((64 - ((10 + header.length + 1) % 64)) % 64) + '\n';
  const out = Buffer.alloc(10 + header.length + values.length * 4);
  out.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0]);
  out.writeUInt16LE(header.length, 8);
  out.write(header, 10, 'latin1');
  for (let i = 0; i < values.length; i++) out.writeFloatLE(values[i]!, 10 + header.length + i * 4);
  return out;
}

const rgba = (w: number, h: number, at: (x: number, y: number) => [number, number, number, number]) => {
  const data = Buffer.alloc(w * h * 4);
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) data.set(at(x, y), (y * w + x) * 4);
  return data;
};
const jpegOf = (w: number, h: number, at: (x: number, y: number) => [number, number, number]) =>
  jpeg.encode({ data: rgba(w, h, (x, y) => [...at(x, y), 255]), width: w, height: h }, 95).data;
const pngOf = (w: number, h: number, at: (x: number, y: number) => [number, number, number, number]) => {
  const png = new PNG({ width: w, height: h });
  png.data = rgba(w, h, at);
  return PNG.sync.write(png);
};

/** Pose of frame f: a rotation about y by a small yaw, camera 1 unit out along +z (AD-NeRF's [Rᵀ | −Rᵀt]). */
function pose(f: number): number[][] {
  const a = 0.05 * (f - 3), c = Math.cos(a), s = Math.sin(a);
  return [[c, 0, s, 0.1 * s], [0, 1, 0, 0.02 * f], [-s, 0, c, c], [0, 0, 0, 1]];
}

const lms = (f: number) => templateLandmarks({ cx: W / 2 + (f % 3), cy: H / 2 - 2, scale: 12, mouthOpen: f % 2 ? 0.12 : 0 });
const HEAD = { x0: 10, y0: 4, x1: 38, y1: 32 };   // head (red) in every parsing map
const inHead = (x: number, y: number) => x >= HEAD.x0 && x < HEAD.x1 && y >= HEAD.y0 && y < HEAD.y1;

interface LayoutOptions { flavour: 'adnerf' | 'ernerf'; parsing?: boolean; torso?: boolean; au?: 'all' | 'blink' | 'none'; npy?: boolean }

function buildLayout(name: string, o: LayoutOptions): string {
  const dir = join(root, name);
  mkdirSync(join(dir, 'ori_imgs'), { recursive: true });
  const frames = Array.from({ length: N }, (_, f) => f);
  const frameJson = (f: number) => ({
    img_id: f, aud_id: f, transform_matrix: pose(f),
    ...(o.flavour === 'adnerf' ? { face_rect: [8 + f, 3, 30, 33 - f] } : {}),
  });
  for (const [part, ids] of [['train', frames.slice(0, 6)], ['val', frames.slice(6)]] as const) {
    writeFileSync(join(dir, `transforms_${part}.json`), JSON.stringify({ focal_len: 1200.5, cx: W / 2, cy: H / 2, frames: ids.map(frameJson) }, null, 2));
  }
  writeFileSync(join(dir, 'bc.jpg'), jpegOf(W, H, () => [20, 200, 40]));
  for (const f of frames) {
    writeFileSync(join(dir, 'ori_imgs', `${f}.jpg`), jpegOf(W, H, (x, y) => [(x * 5 + f * 10) & 255, (y * 6) & 255, 128]));
    const p = lms(f);
    writeFileSync(join(dir, 'ori_imgs', `${f}.lms`), Array.from({ length: 68 }, (_, l) => `${p[2 * l]!.toFixed(6)} ${p[2 * l + 1]!.toFixed(6)}`).join('\n') + '\n');
  }
  if (o.parsing) {
    mkdirSync(join(dir, 'parsing'));
    for (const f of frames) {
      writeFileSync(join(dir, 'parsing', `${f}.png`), pngOf(W, H, (x, y) => (inHead(x, y) ? [255, 0, 0, 255] : y >= 32 ? [0, 0, 255, 255] : [255, 255, 255, 255])));
    }
  }
  if (o.torso) {
    mkdirSync(join(dir, 'torso_imgs'));
    for (const f of frames) {
      if (o.flavour === 'ernerf') {
        // torso alone over transparency: opaque blue below y = 32, transparent above
        writeFileSync(join(dir, 'torso_imgs', `${f}.png`), pngOf(W, H, (_x, y) => (y >= 32 ? [0, 0, 250, 255] : [0, 0, 0, 0])));
      } else {
        writeFileSync(join(dir, 'torso_imgs', `${f}.jpg`), jpegOf(W, H, (x, y) => (inHead(x, y) ? [20, 200, 40] : [100, 100, 100])));
      }
    }
  }
  if (o.au && o.au !== 'none') {
    const names = o.au === 'all' ? ['AU01', 'AU10', 'AU14', 'AU20', 'AU25', 'AU26', 'AU45'] : ['AU45'];
    const header = ['frame', ' face_id', ' timestamp', ' confidence', ' success', ...names.map((a) => ` ${a}_r`)].join(',');
    const rows = frames.map((f) => [f + 1, 0, (f / FPS).toFixed(3), 0.98, 1, ...names.map((a, k) => ((f + k) % 6) * 0.75 + (a === 'AU01' ? 2 : 0))].join(', '));
    writeFileSync(join(dir, 'au.csv'), [header, ...rows].join('\n') + '\n');
  }
  const audio = Float32Array.from({ length: (N * 16000) / FPS + 100 }, (_, i) => 0.2 * Math.sin(i / 10));
  writeFileSync(join(dir, 'aud.wav'), encodeWav(audio, 16000));
  if (o.npy) writeFileSync(join(dir, 'aud.npy'), npyBytes([N, 16, 29], Float32Array.from({ length: N * 16 * 29 }, (_, i) => i / 100)));
  return dir;
}

describe('importAdnerf', () => {
  it('imports an AD-NeRF layout exactly: poses, intrinsics, split, landmarks, face_rect, OpenFace AUs, parsing head mask', () => {
    const src = buildLayout('adnerf', { flavour: 'adnerf', parsing: true, torso: true, au: 'all', npy: true });
    const out = join(root, 'adnerf-out');
    const report = importAdnerf(src, out);
    expect(report).toMatchObject({ frameCount: N, width: W, height: H });
    const clip = loadClip(out);
    expect(clip.info).toMatchObject({ fps: 25, frameCount: N, width: W, height: H, intrinsics: { fx: 1200.5, fy: 1200.5, cx: W / 2, cy: H / 2 } });
    expect(clip.info.split).toEqual({ train: [0, 1, 2, 3, 4, 5], val: [6, 7] });
    for (let f = 0; f < N; f++) {
      // the JSON file holds the matrix as written (JSON has no -0)
      expect(Array.from(clip.pose(f))).toEqual(Array.from(Float32Array.from((JSON.parse(JSON.stringify(pose(f))) as number[][]).flat())));
      expect(Array.from(clip.landmarks(f))).toEqual(Array.from(Float32Array.from(lms(f).map((v) => Number(v.toFixed(6))))));
      expect(Array.from(clip.box('face', f))).toEqual([8 + f, 3, 38 + f, 36 - f]);
      // au.csv column k (after AU01) holds ((f + k) % 6) · 0.75
      AU_NAMES.forEach((name, a) => expect(clip.aus(f)[a]).toBeCloseTo(((f + a + 1) % 6) * 0.75, 5));
      const crop = clip.box('crop', f);
      expect(crop[2]! - crop[0]!).toBe(crop[3]! - crop[1]!);
    }
    // frames: the JPEG's decoded pixels
    const decoded = jpeg.decode(readFileSync(join(src, 'ori_imgs', '5.jpg')), { useTArray: true });
    const frame = clip.frame(5);
    for (const p of [0, 100, 777, W * H - 1]) expect(frame.data[p * 3 + 1]).toBe(decoded.data[p * 4 + 1]);
    // head mask = the parsing map's red pixels; face ⊆ head; lip mask covers the mouth centre (landmark 62/66)
    const head = clip.mask('head', 2), face = clip.mask('face', 2), lip = clip.mask('lip', 1);
    for (let y = 0; y < H; y++) for (let x = 0; x < W; x++) {
      expect(head.data[y * W + x]).toBe(inHead(x, y) ? 255 : 0);
      if (face.data[y * W + x]) expect(inHead(x, y)).toBe(true);
    }
    const m = lms(1), mx = Math.floor((m[124]! + m[132]!) / 2), my = Math.floor((m[125]! + m[133]!) / 2);
    expect(lip.data[my * W + mx]).toBe(255);
    expect(lip.data[2 * W + 2]).toBe(0);
    // torso: AD-NeRF's JPEG copied (head region shows the background green)
    expect(clip.torso(0).data[(20 * W + 20) * 3 + 1]).toBeGreaterThan(180);
    // audio trimmed to N frames; aud.npy copied unchanged
    expect(clip.audio.length).toBe((N * 16000) / FPS);
    expect(report.notes.join('\n')).toMatch(/trimmed|aud.npy/);
    expect(readNpy(readFileSync(join(out, 'aud.npy'))).shape).toEqual([N, 16, 29]);
    expect(clip.audioFeatures().length).toBe(N * 16 * 29);
  });

  it('imports an ER-NeRF layout: RGBA torso composited over bc.jpg, AU45 from au.csv, the other AUs estimated', () => {
    const src = buildLayout('ernerf', { flavour: 'ernerf', parsing: true, torso: true, au: 'blink' });
    const out = join(root, 'ernerf-out');
    const report = importAdnerf(src, out);
    const clip = loadClip(out);
    const torso = clip.torso(3);
    expect(Array.from(torso.data.subarray((36 * W + 5) * 3, (36 * W + 5) * 3 + 3))).toEqual([0, 0, 250]);     // torso pixel
    const bgPixel = Array.from(torso.data.subarray((10 * W + 20) * 3, (10 * W + 20) * 3 + 3));                // transparent: bc.jpg
    expect(bgPixel[1]).toBeGreaterThan(180);
    expect(report.notes.join('\n')).toMatch(/AU10, AU14, AU20, AU25, AU26 estimated from landmark geometry/);
    const au45 = AU_NAMES.indexOf('AU45'), au25 = AU_NAMES.indexOf('AU25');
    for (let f = 0; f < N; f++) {
      expect(clip.aus(f)[au45]).toBeCloseTo((f % 6) * 0.75, 5);   // au.csv's only AU column
      // odd frames have the mouth open in the landmarks
      if (f % 2) expect(clip.aus(f)[au25]).toBeGreaterThan(1); else expect(clip.aus(f)[au25]).toBe(0);
    }
    // face box from AD-NeRF's formula on the landmarks (no face_rect in ER-NeRF's transforms)
    const face = clip.box('face', 0);
    expect(face[0]).toBeLessThan(lms(0)[0]!);
    expect(face[2]).toBeGreaterThan(lms(0)[32]!);
  });

  it('fills in what a minimal layout lacks (no parsing, torso_imgs, au.csv) and says so', () => {
    const src = buildLayout('minimal', { flavour: 'ernerf' });
    const out = join(root, 'minimal-out');
    const report = importAdnerf(src, out);
    const text = report.notes.join('\n');
    expect(text).toMatch(/parsing\/ missing/);
    expect(text).toMatch(/torso_imgs\/ missing/);
    expect(text).toMatch(/au.csv missing/);
    const clip = loadClip(out);
    expect(clip.info.source).toMatch(/parsing\/ missing/);
    // the nose tip is inside the landmark head mask, and the torso shows the background there
    const p = lms(0), nx = Math.floor(p[60]!), ny = Math.floor(p[61]!);
    expect(clip.mask('head', 0).data[ny * W + nx]).toBe(255);
    expect(clip.torso(0).data[(ny * W + nx) * 3 + 1]).toBeGreaterThan(180);
    expect(clip.mask('head', 0).data[(H - 1) * W]).toBe(0);
  });

  it('nerfad prepare --import-adnerf writes the clip and a contact sheet; a bad source is one line, no stack trace', async () => {
    const src = buildLayout('cli', { flavour: 'adnerf', parsing: true, torso: true });
    let out = '', err = '';
    const io = { out: (t: string) => { out += t; }, err: (t: string) => { err += t; } };
    expect(await main(['prepare', '--import-adnerf', src, '--out', join(root, 'cli-out')], io)).toBe(0);
    expect(err).toBe('');
    expect(loadClip(join(root, 'cli-out')).frameCount).toBe(N);
    expect(existsSync(join(root, 'cli-out', 'contact-sheet.png'))).toBe(true);
    expect(await main(['prepare', '--import-adnerf', join(root, 'nope'), '--out', join(root, 'cli-bad')], io)).toBe(1);
    expect(err).toMatch(/^nerfad: .*nope: no such folder\n$/);
    err = '';
    expect(await main(['prepare', '--import-adnerf', src], io)).toBe(1);
    expect(err).toMatch(/prepare needs --out DIR/);
  });

  describe('errors name the file and the problem', () => {
    const fresh = (name: string) => buildLayout(name, { flavour: 'adnerf' });
    const fails = (src: string, pattern: RegExp) => {
      let error: unknown;
      try { importAdnerf(src, join(root, `${src.split('/').pop()}-out`)); } catch (e) { error = e; }
      expect(error).toBeInstanceOf(ImportError);
      expect((error as Error).message).toMatch(pattern);
    };
    it('not a layout', () => fails(join(root), /transforms_train.json missing \(is it an AD-NeRF/));
    it('missing folder', () => fails(join(root, 'nope'), /no such folder/));
    it('a frame missing from the transform files', () => {
      const src = fresh('gap');
      const json = JSON.parse(readFileSync(join(src, 'transforms_train.json'), 'utf8'));
      json.frames.splice(2, 1);
      writeFileSync(join(src, 'transforms_train.json'), JSON.stringify(json));
      fails(src, /img_id 0…7 should all appear, but 1 do not \(2\)/);
    });
    it('a reflection as transform_matrix', () => {
      const src = fresh('reflect');
      const json = JSON.parse(readFileSync(join(src, 'transforms_val.json'), 'utf8'));
      json.frames[0].transform_matrix[0] = [-1, 0, 0, 0];
      json.frames[0].transform_matrix[1] = [0, 1, 0, 0];
      json.frames[0].transform_matrix[2] = [0, 0, 1, 0];
      writeFileSync(join(src, 'transforms_val.json'), JSON.stringify(json));
      fails(src, /poses\[6\] rotation has determinant -1.000.*from transform_matrix/);
    });
    it('different intrinsics in train and val', () => {
      const src = fresh('focal');
      const json = JSON.parse(readFileSync(join(src, 'transforms_val.json'), 'utf8'));
      json.focal_len = 900;
      writeFileSync(join(src, 'transforms_val.json'), JSON.stringify(json));
      fails(src, /transforms_val.json: focal_len\/cx\/cy \(900/);
    });
    it('missing landmarks', () => {
      const src = fresh('nolms');
      unlinkSync(join(src, 'ori_imgs', '4.lms'));
      fails(src, /ori_imgs\/4.lms: file missing/);
    });
    it('a frame of the wrong size', () => {
      const src = fresh('size');
      writeFileSync(join(src, 'ori_imgs', '3.jpg'), jpegOf(W + 2, H, () => [0, 0, 0]));
      fails(src, /ori_imgs\/3.jpg: is 50×40, but bc.jpg is 48×40/);
    });
    it('missing audio', () => {
      const src = fresh('noaudio');
      unlinkSync(join(src, 'aud.wav'));
      fails(src, /aud.wav missing.*DeepSpeech features, which cannot be turned back into sound/);
    });
    it('au.csv shorter than the clip', () => {
      const src = buildLayout('shortau', { flavour: 'adnerf', au: 'all' });
      const lines = readFileSync(join(src, 'au.csv'), 'utf8').trim().split('\n');
      writeFileSync(join(src, 'au.csv'), lines.slice(0, 4).join('\n'));
      fails(src, /au.csv: has 3 rows but the clip has 8 frames/);
    });
    it('aud.npy of the wrong shape', () => {
      const src = fresh('badnpy');
      writeFileSync(join(src, 'aud.npy'), npyBytes([N, 29], new Float32Array(N * 29)));
      fails(src, /aud.npy: shape is \[8, 29\], expected \[N, 16, 29\]/);
    });
    it('nothing is left half-written on a source error found before writing', () => {
      const src = fresh('early');
      unlinkSync(join(src, 'bc.jpg'));
      fails(src, /bc.jpg: file missing/);
      expect(existsSync(join(root, 'early-out', 'clip.json'))).toBe(false);
    });
  });
});
