/**
 * The nerfad clip format (version 1): one preprocessed talking-head video clip on disk, its writer, and a loader
 * that validates every field. The layout is documented in docs/dataset-format.md; in short:
 *
 *   clip.json                 manifest: format "nerfad-clip", version 1, name, fps, frame_count, width, height,
 *                             intrinsics {fx, fy, cx, cy}, crop_size, split {train: [...], val: [...]}, source?
 *   audio.wav                 16 kHz mono audio of the whole clip (16-bit PCM as written; any decodable WAV format)
 *   poses.f32                 [N, 4, 4] camera-to-world (head pose) matrices, row-major
 *   landmarks.f32             [N, 68, 2] 2D landmarks (x, y) in pixels, iBUG-300W order
 *   aus.f32                   [N, 6] action-unit intensities AU10, AU14, AU20, AU25, AU26, AU45 (OpenFace 0–5)
 *   boxes.f32                 [N, 3, 4] face, lip and face-crop boxes, each (x0, y0, x1, y1) in pixels
 *   background.png            background plate, RGB
 *   frames/000000.png …       video frames, RGB
 *   torso/000000.png …        torso images (frame with the head replaced by background), RGB
 *   masks/{head,face,lip}/000000.png …   masks, 8-bit grayscale (255 inside)
 *
 * The .f32 files are raw little-endian float32 with no header; their shape follows from frame_count.
 *
 * `loadClip` reads the manifest, the four arrays and the audio eagerly and checks every field (shapes, counts,
 * ranges, finiteness, orthonormal rotations, boxes inside the image, AUs in 0–5, split indices in range and
 * disjoint, audio at 16 kHz and as long as the video); it checks that every image file exists and reads its PNG
 * header (size, colour type) without decoding. Pixels are decoded on demand (`clip.frame(i)` …). Every problem is a
 * `DatasetError` whose message starts with the file and the field, e.g. `poses.f32: poses[12] contains NaN`.
 */
import { closeSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, readSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PNG } from 'pngjs';
import { decodeWav, encodeWav, WavError } from './wav.ts';
import { audioFeatures, MEL_BANDS } from './audio-features.ts';

export const CLIP_FORMAT = 'nerfad-clip';
export const CLIP_VERSION = 1;
export const AUDIO_SAMPLE_RATE = 16000;
export const LANDMARKS = 68;
/** Column order of aus.f32: the five speech-related AUs NeRF-AD conditions on, then AU45 (blink). */
export const AU_NAMES = ['AU10', 'AU14', 'AU20', 'AU25', 'AU26', 'AU45'] as const;
export const AU_MAX = 5;
/** Row order of boxes.f32. */
export const BOX_KINDS = ['face', 'lip', 'crop'] as const;
export const MASK_KINDS = ['head', 'face', 'lip'] as const;
/** Landmarks may lie outside the image (a chin below the frame edge) by up to this fraction of its size. */
export const LANDMARK_MARGIN = 0.25;
/** Tolerances for pose matrices stored as float32. */
export const ROTATION_TOLERANCE = 1e-3;

export type BoxKind = (typeof BOX_KINDS)[number];
export type MaskKind = (typeof MASK_KINDS)[number];

export class DatasetError extends Error {
  constructor(readonly file: string, readonly field: string, problem: string) {
    super(`${file}: ${field ? `${field} ` : ''}${problem}`);
    this.name = 'DatasetError';
  }
}

export interface Intrinsics {
  fx: number;
  fy: number;
  cx: number;
  cy: number;
}

export interface ClipInfo {
  name: string;
  fps: number;
  frameCount: number;
  width: number;
  height: number;
  intrinsics: Intrinsics;
  /** Side of the square face crops fed to the attention (AD) module, e.g. 64 or 112. */
  cropSize: number;
  /** Frame indices; disjoint; frames in neither are unused. */
  split: { train: number[]; val: number[] };
  /** Free-form provenance (which video, which tools). */
  source?: string;
}

/** Per-frame arrays, row-major, N = frameCount. */
export interface ClipTracks {
  /** [N, 4, 4] camera-to-world. */
  poses: Float32Array;
  /** [N, 68, 2] pixels. */
  landmarks: Float32Array;
  /** [N, 6] in AU_NAMES order. */
  aus: Float32Array;
  /** [N, 3, 4] face, lip, crop boxes as (x0, y0, x1, y1). */
  boxes: Float32Array;
}

/** An 8-bit image, row-major, channels interleaved (3 = RGB, 1 = gray). */
export interface Image8 {
  width: number;
  height: number;
  channels: 1 | 3;
  data: Uint8Array;
}

export type PerFrame<T> = readonly T[] | ((frame: number) => T);

export interface ClipData {
  info: ClipInfo;
  tracks: ClipTracks;
  /** 16 kHz mono samples in [-1, 1]. */
  audio: Float32Array;
  background: Image8;
  frames: PerFrame<Image8>;
  torso: PerFrame<Image8>;
  masks: Record<MaskKind, PerFrame<Image8>>;
}

const MANIFEST = 'clip.json';
const AUDIO_FILE = 'audio.wav';
const BACKGROUND_FILE = 'background.png';
const ARRAY_FILES = {
  poses: { file: 'poses.f32', shape: [4, 4], dims: '4×4' },
  landmarks: { file: 'landmarks.f32', shape: [LANDMARKS, 2], dims: `${LANDMARKS}×2` },
  aus: { file: 'aus.f32', shape: [AU_NAMES.length], dims: `${AU_NAMES.length}` },
  boxes: { file: 'boxes.f32', shape: [BOX_KINDS.length, 4], dims: `${BOX_KINDS.length}×4` },
} as const;
const perFrameValues = (name: keyof ClipTracks) => ARRAY_FILES[name].shape.reduce((a: number, b: number) => a * b, 1);

/** Relative path of frame i's image in an image folder: `<dir>/000042.png`. */
export function framePath(dir: string, frame: number): string {
  return `${dir}/${String(frame).padStart(6, '0')}.png`;
}
export const imageDirs = { frames: 'frames', torso: 'torso', head: 'masks/head', face: 'masks/face', lip: 'masks/lip' } as const;

// ---------------------------------------------------------------------------------------------------------------
// Validation of the in-memory clip (shared by the writer and the loader)

const describe = (v: unknown): string => (typeof v === 'string' ? JSON.stringify(v) : v === undefined ? 'missing' : JSON.stringify(v) ?? String(v));

function isPositiveInt(v: unknown): v is number {
  return typeof v === 'number' && Number.isInteger(v) && v > 0;
}

/** Parses and validates clip.json's object into ClipInfo. */
export function parseManifest(json: unknown, file = MANIFEST): ClipInfo {
  const fail = (field: string, problem: string): never => { throw new DatasetError(file, field, problem); };
  if (typeof json !== 'object' || json === null || Array.isArray(json)) fail('', `must hold a JSON object, got ${describe(json)}`);
  const m = json as Record<string, unknown>;
  if (m.format !== CLIP_FORMAT) fail('format', `must be "${CLIP_FORMAT}", got ${describe(m.format)}`);
  if (!isPositiveInt(m.version)) fail('version', `must be a positive integer, got ${describe(m.version)}`);
  if ((m.version as number) > CLIP_VERSION) fail('version', `${m.version} is newer than this loader (reads version ${CLIP_VERSION})`);
  if (typeof m.name !== 'string' || m.name.length === 0) fail('name', `must be a non-empty string, got ${describe(m.name)}`);
  if (typeof m.fps !== 'number' || !Number.isFinite(m.fps) || m.fps <= 0) fail('fps', `must be a positive number, got ${describe(m.fps)}`);
  for (const key of ['frame_count', 'width', 'height', 'crop_size']) {
    if (!isPositiveInt(m[key])) fail(key, `must be a positive integer, got ${describe(m[key])}`);
  }
  const width = m.width as number, height = m.height as number, frameCount = m.frame_count as number;
  const k = m.intrinsics as Record<string, unknown> | undefined;
  if (typeof k !== 'object' || k === null || Array.isArray(k)) fail('intrinsics', `must be an object {fx, fy, cx, cy}, got ${describe(k)}`);
  for (const key of ['fx', 'fy', 'cx', 'cy']) {
    const v = k![key];
    if (typeof v !== 'number' || !Number.isFinite(v)) fail(`intrinsics.${key}`, `must be a finite number, got ${describe(v)}`);
  }
  const intrinsics = { fx: k!.fx as number, fy: k!.fy as number, cx: k!.cx as number, cy: k!.cy as number };
  if (intrinsics.fx <= 0) fail('intrinsics.fx', `must be positive, got ${intrinsics.fx}`);
  if (intrinsics.fy <= 0) fail('intrinsics.fy', `must be positive, got ${intrinsics.fy}`);
  if (intrinsics.cx < 0 || intrinsics.cx > width) fail('intrinsics.cx', `= ${intrinsics.cx} is outside the image width 0–${width}`);
  if (intrinsics.cy < 0 || intrinsics.cy > height) fail('intrinsics.cy', `= ${intrinsics.cy} is outside the image height 0–${height}`);
  const s = m.split as Record<string, unknown> | undefined;
  if (typeof s !== 'object' || s === null || Array.isArray(s)) fail('split', `must be an object {train: [...], val: [...]}, got ${describe(s)}`);
  const split = { train: [] as number[], val: [] as number[] };
  const owner = new Map<number, string>();
  for (const part of ['train', 'val'] as const) {
    const list = s![part];
    if (!Array.isArray(list)) fail(`split.${part}`, `must be an array of frame indices, got ${describe(list)}`);
    for (const [i, v] of (list as unknown[]).entries()) {
      if (typeof v !== 'number' || !Number.isInteger(v)) fail(`split.${part}[${i}]`, `must be an integer frame index, got ${describe(v)}`);
      const index = v as number;
      if (index < 0 || index >= frameCount) fail(`split.${part}[${i}]`, `= ${index} is out of range (frame_count ${frameCount})`);
      const previous = owner.get(index);
      if (previous === part) fail(`split.${part}[${i}]`, `= ${index} is listed twice`);
      if (previous) fail('split', `frame ${index} is in both split.train and split.val`);
      owner.set(index, part);
      split[part].push(index);
    }
  }
  if (split.train.length === 0) fail('split.train', 'is empty');
  if (m.source !== undefined && typeof m.source !== 'string') fail('source', `must be a string when present, got ${describe(m.source)}`);
  return {
    name: m.name as string, fps: m.fps as number, frameCount, width, height, intrinsics, cropSize: m.crop_size as number,
    split, ...(m.source !== undefined ? { source: m.source as string } : {}),
  };
}

/** The clip.json object for `info` (snake_case keys, as documented). */
export function manifestJson(info: ClipInfo): Record<string, unknown> {
  return {
    format: CLIP_FORMAT, version: CLIP_VERSION, name: info.name, fps: info.fps, frame_count: info.frameCount,
    width: info.width, height: info.height, intrinsics: { ...info.intrinsics }, crop_size: info.cropSize,
    split: { train: [...info.split.train], val: [...info.split.val] }, ...(info.source !== undefined ? { source: info.source } : {}),
  };
}

function nonFinite(values: Float32Array, from: number, to: number): string | null {
  for (let i = from; i < to; i++) {
    const v = values[i]!;
    if (!Number.isFinite(v)) return Number.isNaN(v) ? 'NaN' : v > 0 ? 'Infinity' : '-Infinity';
  }
  return null;
}

/** Validates the per-frame arrays against the manifest; throws a DatasetError naming the array file and entry. */
export function validateTracks(info: ClipInfo, tracks: ClipTracks): void {
  const n = info.frameCount, { width, height } = info;
  for (const name of Object.keys(ARRAY_FILES) as (keyof ClipTracks)[]) {
    const { file, dims } = ARRAY_FILES[name];
    const expected = n * perFrameValues(name);
    const got = tracks[name];
    if (!(got instanceof Float32Array)) throw new DatasetError(file, name, `must be a Float32Array`);
    if (got.length !== expected) {
      throw new DatasetError(file, '', `holds ${got.length} float32 values (${got.length * 4} bytes), expected ${n} frames × ${dims} = ${expected} (${expected * 4} bytes)`);
    }
    const per = perFrameValues(name);
    for (let f = 0; f < n; f++) {
      const bad = nonFinite(got, f * per, (f + 1) * per);
      if (bad) throw new DatasetError(file, `${name}[${f}]`, `contains ${bad}`);
    }
  }
  const { poses, landmarks, aus, boxes } = tracks;
  for (let f = 0; f < n; f++) {
    const p = poses.subarray(f * 16, f * 16 + 16);
    const at = (r: number, c: number) => p[r * 4 + c]!;
    const lastRow = [at(3, 0), at(3, 1), at(3, 2), at(3, 3)];
    if (Math.abs(lastRow[0]!) > 1e-5 || Math.abs(lastRow[1]!) > 1e-5 || Math.abs(lastRow[2]!) > 1e-5 || Math.abs(lastRow[3]! - 1) > 1e-5) {
      throw new DatasetError('poses.f32', `poses[${f}]`, `last row is [${lastRow.join(', ')}], expected [0, 0, 0, 1]`);
    }
    let worst = 0;
    for (let i = 0; i < 3; i++) {
      for (let j = 0; j < 3; j++) {
        let dot = 0;
        for (let r = 0; r < 3; r++) dot += at(r, i) * at(r, j);
        worst = Math.max(worst, Math.abs(dot - (i === j ? 1 : 0)));
      }
    }
    if (worst > ROTATION_TOLERANCE) {
      throw new DatasetError('poses.f32', `poses[${f}]`, `rotation is not orthonormal (max |RᵀR − I| = ${worst.toPrecision(3)})`);
    }
    const det = at(0, 0) * (at(1, 1) * at(2, 2) - at(1, 2) * at(2, 1)) - at(0, 1) * (at(1, 0) * at(2, 2) - at(1, 2) * at(2, 0))
      + at(0, 2) * (at(1, 0) * at(2, 1) - at(1, 1) * at(2, 0));
    if (det < 0) throw new DatasetError('poses.f32', `poses[${f}]`, `rotation has determinant ${det.toFixed(3)} (a reflection, not a rotation)`);

    const mx = LANDMARK_MARGIN * width, my = LANDMARK_MARGIN * height;
    for (let l = 0; l < LANDMARKS; l++) {
      const x = landmarks[(f * LANDMARKS + l) * 2]!, y = landmarks[(f * LANDMARKS + l) * 2 + 1]!;
      if (x < -mx || x > width + mx || y < -my || y > height + my) {
        throw new DatasetError('landmarks.f32', `landmarks[${f}][${l}]`, `= (${x}, ${y}) is far outside the ${width}×${height} image`);
      }
    }
    for (const [a, name] of AU_NAMES.entries()) {
      const v = aus[f * AU_NAMES.length + a]!;
      if (v < 0 || v > AU_MAX) throw new DatasetError('aus.f32', `aus[${f}].${name}`, `= ${v} is outside 0–${AU_MAX}`);
    }
    for (const [b, kind] of BOX_KINDS.entries()) {
      const [x0, y0, x1, y1] = boxes.subarray((f * BOX_KINDS.length + b) * 4, (f * BOX_KINDS.length + b) * 4 + 4);
      const field = `boxes[${f}].${kind}`;
      const text = `(${x0}, ${y0}, ${x1}, ${y1})`;
      if (!(x0! < x1! && y0! < y1!)) throw new DatasetError('boxes.f32', field, `= ${text} is empty or inverted (need x0 < x1, y0 < y1)`);
      if (x0! < 0 || y0! < 0 || x1! > width || y1! > height) {
        throw new DatasetError('boxes.f32', field, `= ${text} is not inside the ${width}×${height} image`);
      }
      if (kind === 'crop' && Math.abs((x1! - x0!) - (y1! - y0!)) > 1) {
        throw new DatasetError('boxes.f32', field, `= ${text} is not square (${x1! - x0!}×${y1! - y0!}); the attention module takes square crops`);
      }
    }
  }
}

/** Checks 16 kHz mono audio length against the video: within one video frame of frame_count / fps seconds. */
export function validateAudioLength(info: ClipInfo, samples: number): void {
  const expected = Math.round((info.frameCount * AUDIO_SAMPLE_RATE) / info.fps);
  const tolerance = Math.ceil(AUDIO_SAMPLE_RATE / info.fps);
  if (Math.abs(samples - expected) > tolerance) {
    const seconds = (samples / AUDIO_SAMPLE_RATE).toFixed(3), video = (info.frameCount / info.fps).toFixed(3);
    throw new DatasetError(AUDIO_FILE, 'length', `is ${samples} samples (${seconds} s) but ${info.frameCount} frames at ${info.fps} fps last ${video} s (${expected} samples ± one frame)`);
  }
}

// ---------------------------------------------------------------------------------------------------------------
// PNG helpers

const PNG_SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];
const COLOR_TYPE_NAMES: Record<number, string> = { 0: 'grayscale', 2: 'RGB', 3: 'palette', 4: 'grayscale+alpha', 6: 'RGBA' };

/** Reads width, height, bit depth and colour type from a PNG's IHDR without decoding it. */
export function readPngHeader(path: string, file: string): { width: number; height: number; bitDepth: number; colorType: number } {
  const header = new Uint8Array(26);
  let fd: number;
  try { fd = openSync(path, 'r'); } catch { throw new DatasetError(file, '', 'file missing'); }
  let got: number;
  try { got = readSync(fd, header, 0, 26, 0); } finally { closeSync(fd); }
  if (got < 26 || !PNG_SIGNATURE.every((b, i) => header[i] === b) || String.fromCharCode(...header.subarray(12, 16)) !== 'IHDR') {
    throw new DatasetError(file, '', 'is not a PNG file');
  }
  const view = new DataView(header.buffer);
  return { width: view.getUint32(16), height: view.getUint32(20), bitDepth: header[24]!, colorType: header[25]! };
}

type ImageRole = 'rgb' | 'mask';

function checkPngHeader(path: string, file: string, role: ImageRole, width: number, height: number): void {
  const h = readPngHeader(path, file);
  if (h.width !== width || h.height !== height) throw new DatasetError(file, 'size', `is ${h.width}×${h.height}, expected ${width}×${height}`);
  if (h.bitDepth !== 8) throw new DatasetError(file, 'bit depth', `is ${h.bitDepth}, expected 8`);
  const ok = role === 'rgb' ? h.colorType === 2 || h.colorType === 6 : h.colorType === 0;
  if (!ok) {
    throw new DatasetError(file, 'colour type', `is ${COLOR_TYPE_NAMES[h.colorType] ?? h.colorType}, expected ${role === 'rgb' ? 'RGB (or RGBA)' : '8-bit grayscale'}`);
  }
}

function decodePng(path: string, file: string, role: ImageRole, width: number, height: number): Image8 {
  checkPngHeader(path, file, role, width, height);
  let png: PNG;
  try { png = PNG.sync.read(readFileSync(path)); } catch (e) { throw new DatasetError(file, '', `could not be decoded: ${(e as Error).message}`); }
  const channels = role === 'rgb' ? 3 : 1;
  const data = new Uint8Array(width * height * channels);
  for (let p = 0; p < width * height; p++) for (let c = 0; c < channels; c++) data[p * channels + c] = png.data[p * 4 + c]!;
  return { width, height, channels, data };
}

function encodePng8(image: Image8): Buffer {
  const colorType = image.channels === 3 ? 2 : 0;
  return PNG.sync.write({ width: image.width, height: image.height, data: Buffer.from(image.data.buffer, image.data.byteOffset, image.data.byteLength) } as PNG,
    { colorType, inputColorType: colorType, inputHasAlpha: false });
}

// ---------------------------------------------------------------------------------------------------------------
// Writer

function float32Le(values: Float32Array): Buffer {
  const out = Buffer.alloc(values.length * 4);
  for (let i = 0; i < values.length; i++) out.writeFloatLE(values[i]!, i * 4);
  return out;
}

function readFloat32Le(bytes: Buffer): Float32Array {
  const out = new Float32Array(bytes.length >> 2);
  for (let i = 0; i < out.length; i++) out[i] = bytes.readFloatLE(i * 4);
  return out;
}

const pick = <T>(source: PerFrame<T>, frame: number): T => (typeof source === 'function' ? source(frame) : source[frame]!);

/**
 * Writes a clip in format version 1 into `dir` (created if needed). Validates everything first, with the same
 * messages as the loader (naming the file the field would go to), so a written clip always loads.
 */
export function writeClip(dir: string, clip: ClipData): void {
  const info = parseManifest(manifestJson(clip.info));
  validateTracks(info, clip.tracks);
  validateAudioLength(info, clip.audio.length);
  const checkImage = (image: Image8, file: string, role: ImageRole) => {
    const channels = role === 'rgb' ? 3 : 1;
    if (image.width !== info.width || image.height !== info.height) {
      throw new DatasetError(file, 'size', `is ${image.width}×${image.height}, expected ${info.width}×${info.height}`);
    }
    if (image.channels !== channels || image.data.length !== info.width * info.height * channels) {
      throw new DatasetError(file, 'channels', `has ${image.channels} channel(s) and ${image.data.length} bytes, expected ${channels} and ${info.width * info.height * channels}`);
    }
    return image;
  };
  mkdirSync(dir, { recursive: true });
  for (const sub of Object.values(imageDirs)) mkdirSync(join(dir, sub), { recursive: true });
  // One key per line, but number arrays (the split lists) on one line each.
  const manifest = JSON.stringify(manifestJson(info), null, 1).replace(/\[[\d,\s.eE+-]*\]/g, (list) => list.replace(/\s+/g, ''));
  writeFileSync(join(dir, MANIFEST), manifest + '\n');
  for (const name of Object.keys(ARRAY_FILES) as (keyof ClipTracks)[]) writeFileSync(join(dir, ARRAY_FILES[name].file), float32Le(clip.tracks[name]));
  writeFileSync(join(dir, AUDIO_FILE), encodeWav(clip.audio, AUDIO_SAMPLE_RATE));
  writeFileSync(join(dir, BACKGROUND_FILE), encodePng8(checkImage(clip.background, BACKGROUND_FILE, 'rgb')));
  for (let f = 0; f < info.frameCount; f++) {
    const write = (sub: string, image: Image8, role: ImageRole) => {
      const file = framePath(sub, f);
      writeFileSync(join(dir, file), encodePng8(checkImage(image, file, role)));
    };
    write(imageDirs.frames, pick(clip.frames, f), 'rgb');
    write(imageDirs.torso, pick(clip.torso, f), 'rgb');
    for (const kind of MASK_KINDS) write(imageDirs[kind], pick(clip.masks[kind], f), 'mask');
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Loader

export interface LoadOptions {
  /** Check every image's existence and PNG header at load time (default true); otherwise only when read. */
  checkImages?: boolean;
}

/** A loaded, validated clip. Per-frame arrays are in memory; images are decoded on demand (not cached). */
export class Clip {
  private features = new Map<number, Float32Array>();

  constructor(readonly dir: string, readonly info: ClipInfo, readonly tracks: ClipTracks, readonly audio: Float32Array) {}

  get frameCount(): number { return this.info.frameCount; }

  /** 4×4 camera-to-world of frame f, row-major (a view into tracks.poses). */
  pose(f: number): Float32Array { return this.tracks.poses.subarray(this.index(f) * 16, f * 16 + 16); }
  /** 68×2 landmarks of frame f (a view). */
  landmarks(f: number): Float32Array { return this.tracks.landmarks.subarray(this.index(f) * LANDMARKS * 2, (f + 1) * LANDMARKS * 2); }
  /** The six AU intensities of frame f in AU_NAMES order (a view). */
  aus(f: number): Float32Array { return this.tracks.aus.subarray(this.index(f) * AU_NAMES.length, (f + 1) * AU_NAMES.length); }
  /** Box (x0, y0, x1, y1) of frame f (a view). */
  box(kind: BoxKind, f: number): Float32Array {
    const at = (this.index(f) * BOX_KINDS.length + BOX_KINDS.indexOf(kind)) * 4;
    return this.tracks.boxes.subarray(at, at + 4);
  }

  frame(f: number): Image8 { return this.image(imageDirs.frames, f, 'rgb'); }
  torso(f: number): Image8 { return this.image(imageDirs.torso, f, 'rgb'); }
  mask(kind: MaskKind, f: number): Image8 { return this.image(imageDirs[kind], f, 'mask'); }
  background(): Image8 { return decodePng(join(this.dir, BACKGROUND_FILE), BACKGROUND_FILE, 'rgb', this.info.width, this.info.height); }

  /** AudioNet input [frameCount, 16, bands] (row-major log-mel, see audio-features.ts); computed once per band count. */
  audioFeatures(bands = MEL_BANDS): Float32Array {
    let f = this.features.get(bands);
    if (!f) { f = audioFeatures(this.audio, this.info.frameCount, this.info.fps, bands); this.features.set(bands, f); }
    return f;
  }

  private index(f: number): number {
    if (!Number.isInteger(f) || f < 0 || f >= this.info.frameCount) {
      throw new RangeError(`clip ${this.info.name}: frame ${f} is out of range (frame_count ${this.info.frameCount})`);
    }
    return f;
  }

  private image(sub: string, f: number, role: ImageRole): Image8 {
    const file = framePath(sub, this.index(f));
    return decodePng(join(this.dir, file), file, role, this.info.width, this.info.height);
  }
}

/** Loads and validates the clip in `dir`; throws DatasetError naming the file and field on any problem. */
export function loadClip(dir: string, options: LoadOptions = {}): Clip {
  const manifestPath = join(dir, MANIFEST);
  if (!existsSync(manifestPath)) throw new DatasetError(MANIFEST, '', `file missing (is ${dir} a nerfad clip directory?)`);
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(manifestPath, 'utf8'));
  } catch (e) {
    throw new DatasetError(MANIFEST, '', `is not valid JSON (${(e as Error).message})`);
  }
  const info = parseManifest(json);

  const tracks = {} as ClipTracks;
  for (const name of Object.keys(ARRAY_FILES) as (keyof ClipTracks)[]) {
    const { file, dims } = ARRAY_FILES[name];
    const path = join(dir, file);
    if (!existsSync(path)) throw new DatasetError(file, '', 'file missing');
    const bytes = readFileSync(path);
    const expected = info.frameCount * perFrameValues(name) * 4;
    if (bytes.length !== expected) {
      const frames = bytes.length / (perFrameValues(name) * 4);
      throw new DatasetError(file, '', `is ${bytes.length} bytes, expected ${info.frameCount} frames × ${dims} float32 = ${expected} bytes`
        + (Number.isInteger(frames) ? ` (it holds ${frames} frames: frame_count mismatch)` : ' (truncated or not float32)'));
    }
    tracks[name] = readFloat32Le(bytes);
  }
  validateTracks(info, tracks);

  const audioPath = join(dir, AUDIO_FILE);
  if (!existsSync(audioPath)) throw new DatasetError(AUDIO_FILE, '', 'file missing');
  let wav;
  try {
    wav = decodeWav(readFileSync(audioPath), AUDIO_FILE);
  } catch (e) {
    if (e instanceof WavError) throw new DatasetError(AUDIO_FILE, '', e.message.replace(`${AUDIO_FILE}: `, ''));
    throw e;
  }
  if (wav.sampleRate !== AUDIO_SAMPLE_RATE) {
    throw new DatasetError(AUDIO_FILE, 'sample rate', `is ${wav.sampleRate} Hz, expected ${AUDIO_SAMPLE_RATE} (resample with resample() from src/data/wav.ts)`);
  }
  if (wav.channels.length !== 1) throw new DatasetError(AUDIO_FILE, 'channel count', `is ${wav.channels.length}, expected 1 (mono)`);
  validateAudioLength(info, wav.mono.length);

  if (options.checkImages ?? true) {
    checkPngHeader(join(dir, BACKGROUND_FILE), BACKGROUND_FILE, 'rgb', info.width, info.height);
    const folders: [string, ImageRole][] = [[imageDirs.frames, 'rgb'], [imageDirs.torso, 'rgb'], ...MASK_KINDS.map((k) => [imageDirs[k], 'mask'] as [string, ImageRole])];
    for (const [sub, role] of folders) {
      if (!existsSync(join(dir, sub))) throw new DatasetError(`${sub}/`, '', `folder missing (expected ${info.frameCount} PNG files)`);
      const pngs = readdirSync(join(dir, sub)).filter((n) => /^\d{6}\.png$/.test(n));
      for (let f = 0; f < info.frameCount; f++) {
        const file = framePath(sub, f);
        if (!existsSync(join(dir, file))) {
          throw new DatasetError(file, '', `file missing (frame_count is ${info.frameCount}, ${sub}/ holds ${pngs.length} frame PNGs)`);
        }
        checkPngHeader(join(dir, file), file, role, info.width, info.height);
      }
      if (pngs.length > info.frameCount) {
        throw new DatasetError(`${sub}/`, '', `holds ${pngs.length} frame PNGs but frame_count is ${info.frameCount}`);
      }
    }
  }
  return new Clip(dir, info, tracks, wav.mono);
}
