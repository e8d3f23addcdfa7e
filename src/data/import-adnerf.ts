/**
 * Importer from the AD-NeRF / ER-NeRF (and RAD-NeRF, NeRF-AD) preprocessed layout into the nerfad clip format.
 *
 *   SRC/transforms_train.json, transforms_val.json   {focal_len, cx, cy, frames: [{img_id, aud_id, transform_matrix,
 *                                                     face_rect?, lip_rect?}]}
 *   SRC/ori_imgs/<i>.jpg, <i>.lms                   frames and their 68 FAN landmarks ("x y" per line)
 *   SRC/torso_imgs/<i>.jpg | <i>.png               AD-NeRF: the frame with the head replaced by background (JPEG);
 *                                                     ER-NeRF: the torso alone over transparency (RGBA PNG)
 *   SRC/parsing/<i>.png                             BiSeNet labels as colours (head (255,0,0), neck (0,255,0),
 *                                                     torso (0,0,255), background white); optional
 *   SRC/bc.jpg                                      background plate; its size is the clip's W×H
 *   SRC/aud.wav                                     the audio (16 kHz in AD-NeRF; any rate is resampled)
 *   SRC/aud.npy                                     DeepSpeech features [N, 16, 29]; optional, copied as aud.npy
 *   SRC/au.csv                                      OpenFace FeatureExtraction output (ER-NeRF reads " AU45_r")
 *
 * How each convention maps (exactly, no rescaling):
 * - Poses: AD-NeRF's save_transforms writes transform_matrix = [Rᵀ | −Rᵀ t] with (R, t) the face tracker's head
 *   rotation and translation, t divided by 10 — i.e. camera-to-world in the head's frame, camera looking down −z
 *   with y up (the tracker projects x' = −f X/Z + cx, y' = f Y/Z + cy with Z < 0). That is our poses.f32
 *   convention, so matrices are copied as they are, in AD-NeRF's length unit (tracker units / 10). ER-NeRF and
 *   RAD-NeRF write the same files and only rescale at load time (nerf_matrix_to_ngp, scale 4 and an axis
 *   permutation) — we import the files, not their loaders' transforms.
 * - Intrinsics: fx = fy = focal_len, cx and cy as written (AD-NeRF writes W/2, H/2). Both transform files must agree.
 * - Image size: whatever the files are — 450×450 in AD-NeRF's examples, 512×512 in ER-NeRF's; no resizing, so
 *   focal_len, landmarks and rects stay in the same pixel units. Every frame must have bc.jpg's size.
 * - Frames: N = 1 + the largest img_id; ids 0…N−1 must all appear (in train or val). Split: the two files' ids.
 *   fps is 25, as both pipelines require.
 * - Boxes: face = face_rect (x, y, w, h) → (x, y, x + w, y + h) when present, else AD-NeRF's own formula on the
 *   landmarks; lip = lip_rect when present (NeRF-AD: (x0, y0, x1, y1)), else ER-NeRF's square lip rect from the
 *   landmarks; crop: computed from the landmarks (NeRF-AD's crop/*.pkl are Python pickles, not read).
 * - AUs: the au.csv columns AU10_r, AU14_r, AU20_r, AU25_r, AU26_r, AU45_r that exist (OpenFace's own estimates);
 *   missing ones are estimated from the landmarks (src/data/prepare/landmarks.ts) and listed in the report.
 * - Masks: head = parsing's red pixels; face = head ∩ the landmark face polygon; lip = outer lip polygon. Without
 *   parsing/, the head mask is the landmark polygon raised to an estimated hairline (reported: no hair, no ears).
 * - Torso: an RGBA torso_imgs PNG is composited over bc.jpg (the frame with the head replaced by background); an
 *   opaque one is copied; without torso_imgs/, the head mask is replaced by bc.jpg (reported).
 * - Audio: aud.wav, mixed to mono, resampled to 16 kHz and trimmed or zero-padded to exactly N / 25 s (reported
 *   when it differed by more than a frame). aud.npy cannot become audio; without aud.wav the import stops.
 */
import { copyFileSync, existsSync, readFileSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { AU_NAMES, AUDIO_SAMPLE_RATE, DatasetError, LANDMARKS, writeClip, type Image8 } from './format.ts';
import { decodeWavMono, WavError } from './wav.ts';
import { boxesFromLandmarks, estimateAus, facePolygon, fillPolygon, lipPolygon, type Box } from './prepare/landmarks.ts';
import { compositeOver, ImageFileError, maskImage, readImageFile, type Rgba8 } from './prepare/images.ts';
import { readNpy, NpyError } from './prepare/npy.ts';

/** A problem with the source layout (a user mistake): the message says which file and what is wrong. */
export class ImportError extends Error {
  constructor(message: string) { super(message); this.name = 'ImportError'; }
}

export interface ImportOptions {
  /** Clip name (default: the source folder's name). */
  name?: string;
  /** crop_size of the clip (default 64, our profile; NeRF-AD uses 112). */
  cropSize?: number;
  log?: (line: string) => void;
}

export interface ImportReport {
  frameCount: number;
  width: number;
  height: number;
  /** What was not in the source and how it was produced, one line each. */
  notes: string[];
}

const FPS = 25;

interface TransformFrame { img_id?: unknown; transform_matrix?: unknown; face_rect?: unknown; lip_rect?: unknown }

function readJson(path: string, file: string): Record<string, unknown> {
  let text: string;
  try { text = readFileSync(path, 'utf8'); } catch { throw new ImportError(`${file}: file missing`); }
  try {
    const json = JSON.parse(text) as unknown;
    if (typeof json !== 'object' || json === null || Array.isArray(json)) throw new Error('not a JSON object');
    return json as Record<string, unknown>;
  } catch (e) {
    throw new ImportError(`${file}: is not valid JSON (${(e as Error).message})`);
  }
}

function parseLms(path: string, file: string): number[] {
  let text: string;
  try { text = readFileSync(path, 'utf8'); } catch { throw new ImportError(`${file}: file missing (every frame needs its 68 landmarks)`); }
  const values = text.trim().split(/\s+/).map(Number);
  if (values.length !== LANDMARKS * 2 || values.some((v) => !Number.isFinite(v))) {
    throw new ImportError(`${file}: expected 68 lines of "x y" numbers, got ${values.length} values`);
  }
  return values;
}

/** OpenFace CSV → column name (trimmed) → values per row. */
function parseCsv(path: string): { columns: Map<string, number[]>; rows: number } {
  const lines = readFileSync(path, 'utf8').split(/\r?\n/).filter((l) => l.trim().length > 0);
  if (lines.length === 0) throw new ImportError('au.csv: is empty');
  const header = lines[0]!.split(',').map((s) => s.trim());
  const columns = new Map<string, number[]>(header.map((h) => [h, []]));
  for (const [r, line] of lines.slice(1).entries()) {
    const cells = line.split(',');
    if (cells.length !== header.length) throw new ImportError(`au.csv: row ${r + 1} has ${cells.length} cells, the header has ${header.length}`);
    cells.forEach((c, i) => columns.get(header[i]!)!.push(Number(c)));
  }
  return { columns, rows: lines.length - 1 };
}

/** Imports the AD-NeRF/ER-NeRF preprocessed folder `src` into a nerfad clip at `out`. */
export function importAdnerf(src: string, out: string, options: ImportOptions = {}): ImportReport {
  try {
    return importLayout(src, out, options);
  } catch (e) {
    if (e instanceof ImageFileError) throw new ImportError(e.message);
    throw e;
  }
}

function importLayout(src: string, out: string, options: ImportOptions): ImportReport {
  const log = options.log ?? (() => {});
  const notes: string[] = [];
  const note = (line: string) => { notes.push(line); log(`note: ${line}`); };
  if (!existsSync(src)) throw new ImportError(`${src}: no such folder`);
  if (!existsSync(join(src, 'transforms_train.json'))) {
    throw new ImportError(`${src}: transforms_train.json missing (is it an AD-NeRF/ER-NeRF preprocessed folder? expected transforms_train.json, ori_imgs/, bc.jpg, aud.wav)`);
  }

  // --- transforms: intrinsics, poses, split, rects
  const poseOf = new Map<number, number[]>(), faceRect = new Map<number, Box>(), lipRect = new Map<number, Box>();
  const split = { train: [] as number[], val: [] as number[] };
  let intrinsics: { fx: number; fy: number; cx: number; cy: number } | null = null;
  for (const part of ['train', 'val'] as const) {
    const file = `transforms_${part}.json`;
    if (!existsSync(join(src, file))) { if (part === 'val') note(`${file} missing: the clip has no validation frames`); continue; }
    const json = readJson(join(src, file), file);
    for (const key of ['focal_len', 'cx', 'cy']) {
      if (typeof json[key] !== 'number' || !Number.isFinite(json[key])) throw new ImportError(`${file}: ${key} must be a number, got ${JSON.stringify(json[key])}`);
    }
    const k = { fx: json.focal_len as number, fy: json.focal_len as number, cx: json.cx as number, cy: json.cy as number };
    if (intrinsics && (intrinsics.fx !== k.fx || intrinsics.cx !== k.cx || intrinsics.cy !== k.cy)) {
      throw new ImportError(`${file}: focal_len/cx/cy (${k.fx}, ${k.cx}, ${k.cy}) differ from transforms_train.json's (${intrinsics.fx}, ${intrinsics.cx}, ${intrinsics.cy})`);
    }
    intrinsics = k;
    if (!Array.isArray(json.frames)) throw new ImportError(`${file}: frames must be an array`);
    for (const [j, frame] of (json.frames as TransformFrame[]).entries()) {
      const id = frame?.img_id;
      if (typeof id !== 'number' || !Number.isInteger(id) || id < 0) throw new ImportError(`${file}: frames[${j}].img_id must be a non-negative integer, got ${JSON.stringify(id)}`);
      if (poseOf.has(id)) throw new ImportError(`${file}: frames[${j}].img_id ${id} appears twice in the transform files`);
      const m = frame.transform_matrix;
      const flat = Array.isArray(m) && m.length === 4 && m.every((row) => Array.isArray(row) && row.length === 4) ? (m as unknown[][]).flat() : null;
      if (!flat || flat.some((v) => typeof v !== 'number' || !Number.isFinite(v))) {
        throw new ImportError(`${file}: frames[${j}] (img_id ${id}) transform_matrix must be a 4×4 array of finite numbers`);
      }
      poseOf.set(id, flat as number[]);
      split[part].push(id);
      const rect = (v: unknown) => (Array.isArray(v) && v.length === 4 && v.every((x) => typeof x === 'number') ? (v as number[]) : null);
      const fr = rect(frame.face_rect);
      if (fr) faceRect.set(id, [fr[0]!, fr[1]!, fr[0]! + fr[2]!, fr[1]! + fr[3]!]);
      const lr = rect(frame.lip_rect);
      if (lr) lipRect.set(id, lr as Box);
    }
  }
  const n = Math.max(-1, ...poseOf.keys()) + 1;
  if (n === 0) throw new ImportError('transforms_train.json: holds no frames');
  const missing = Array.from({ length: n }, (_, i) => i).filter((i) => !poseOf.has(i));
  if (missing.length) {
    throw new ImportError(`transform files: img_id 0…${n - 1} should all appear, but ${missing.length} do not (${missing.slice(0, 10).join(', ')}${missing.length > 10 ? ', …' : ''})`);
  }

  // --- background, size
  const background = readImageFile(join(src, 'bc.jpg'), 'bc.jpg');
  const { width, height } = background;
  const bg: Image8 = { width, height, channels: 3, data: background.data };

  // --- landmarks
  const landmarks = new Float32Array(n * LANDMARKS * 2);
  for (let i = 0; i < n; i++) landmarks.set(parseLms(join(src, 'ori_imgs', `${i}.lms`), `ori_imgs/${i}.lms`), i * LANDMARKS * 2);

  // --- AUs: OpenFace's where au.csv has them, our landmark estimate otherwise
  const aus = estimateAus(landmarks, n);
  const estimated = new Set<string>(AU_NAMES);
  if (existsSync(join(src, 'au.csv'))) {
    const { columns, rows } = parseCsv(join(src, 'au.csv'));
    if (rows < n) throw new ImportError(`au.csv: has ${rows} rows but the clip has ${n} frames`);
    if (rows > n) note(`au.csv has ${rows} rows for ${n} frames; the first ${n} are used`);
    const frameColumn = columns.get('frame');
    AU_NAMES.forEach((name, a) => {
      const column = columns.get(`${name}_r`);
      if (!column) return;
      for (let i = 0; i < n; i++) {
        // OpenFace numbers frames from 1; rows are in frame order
        if (frameColumn && frameColumn[i] !== i + 1) throw new ImportError(`au.csv: row ${i + 1} is frame ${frameColumn[i]}, expected ${i + 1}`);
        const v = column[i]!;
        if (!Number.isFinite(v)) throw new ImportError(`au.csv: ${name}_r of frame ${i + 1} is not a number`);
        aus[i * AU_NAMES.length + a] = Math.min(5, Math.max(0, v));
      }
      estimated.delete(name);
    });
  } else {
    note('au.csv missing');
  }
  if (estimated.size) note(`${[...estimated].join(', ')} estimated from landmark geometry (an approximation of OpenFace's; see src/data/prepare/landmarks.ts)`);

  // --- boxes
  const boxes = boxesFromLandmarks(landmarks, n, width, height, (f) => faceRect.get(f) ?? null);
  for (const [f, box] of lipRect) boxes.set(box, f * 12 + 4);
  if (faceRect.size < n) note(`face_rect missing for ${n - faceRect.size} frames: computed from the landmarks with AD-NeRF's formula`);
  note('crop boxes computed from the landmarks (square, 1.2 × the landmarks\' extent)');

  // --- poses
  const poses = new Float32Array(n * 16);
  for (let i = 0; i < n; i++) poses.set(poseOf.get(i)!, i * 16);

  // --- audio
  const audioPath = ['aud.wav', 'audio.wav'].map((f) => join(src, f)).find((p) => existsSync(p));
  if (!audioPath) {
    throw new ImportError(`${src}: aud.wav missing. The clip format stores the audio itself (aud.npy holds DeepSpeech features, which cannot be turned back into sound); put the clip's audio there as aud.wav`);
  }
  let audio: Float32Array;
  try {
    audio = decodeWavMono(readFileSync(audioPath), AUDIO_SAMPLE_RATE, basename(audioPath));
  } catch (e) {
    if (e instanceof WavError) throw new ImportError(e.message);
    throw e;
  }
  const samples = Math.round((n * AUDIO_SAMPLE_RATE) / FPS);
  if (Math.abs(audio.length - samples) > AUDIO_SAMPLE_RATE / FPS) {
    note(`${basename(audioPath)} lasts ${(audio.length / AUDIO_SAMPLE_RATE).toFixed(3)} s, the ${n} frames ${(n / FPS).toFixed(3)} s: ${audio.length > samples ? 'trimmed' : 'zero-padded'} to match`);
  }
  const fitted = new Float32Array(samples);
  fitted.set(audio.subarray(0, samples));

  // --- aud.npy: checked and copied beside the clip for models that want the anchors' DeepSpeech features
  let copyNpy = false;
  if (existsSync(join(src, 'aud.npy'))) {
    try {
      const npy = readNpy(readFileSync(join(src, 'aud.npy')), 'aud.npy');
      const [frames, steps, dims] = npy.shape;
      if (npy.shape.length !== 3 || steps !== 16) throw new ImportError(`aud.npy: shape is [${npy.shape.join(', ')}], expected [N, 16, 29] (DeepSpeech windows)`);
      if (frames !== n) note(`aud.npy has ${frames} frames for ${n} video frames`);
      note(`aud.npy ([${frames}, 16, ${dims}]) copied as aud.npy; the clip's audioFeatures() are log-mel features from audio.wav`);
      copyNpy = true;
    } catch (e) {
      if (e instanceof NpyError) throw new ImportError(e.message);
      throw e;
    }
  }

  // --- per-frame images, decoded once per frame (writeClip asks for frame, torso, then the masks of one frame)
  const hasParsing = existsSync(join(src, 'parsing'));
  if (!hasParsing) note('parsing/ missing: head masks from the landmarks raised to an estimated hairline (no hair, ears or neck)');
  const torsoDir = existsSync(join(src, 'torso_imgs'));
  if (!torsoDir) note('torso_imgs/ missing: torso images made by replacing the head mask with bc.jpg');
  let cached: { f: number; frame: Image8; torso: Image8; head: Uint8Array; face: Uint8Array; lip: Uint8Array } | null = null;
  const perFrame = (f: number) => {
    if (cached?.f === f) return cached;
    const check = (im: Rgba8, file: string): Rgba8 => {
      if (im.width !== width || im.height !== height) throw new ImportError(`${file}: is ${im.width}×${im.height}, but bc.jpg is ${width}×${height}`);
      return im;
    };
    const frame = check(readImageFile(join(src, 'ori_imgs', `${f}.jpg`), `ori_imgs/${f}.jpg`), `ori_imgs/${f}.jpg`);
    const pixels = width * height;
    let head: Uint8Array = new Uint8Array(pixels);
    if (hasParsing) {
      const parsing = check(readImageFile(join(src, 'parsing', `${f}.png`), `parsing/${f}.png`), `parsing/${f}.png`);
      for (let p = 0; p < pixels; p++) {
        const r = parsing.data[p * 3]!, g = parsing.data[p * 3 + 1]!, b = parsing.data[p * 3 + 2]!;
        if (r > 200 && g < 56 && b < 56) head[p] = 255;
      }
    } else {
      head = fillPolygon(head, width, height, facePolygon(landmarks, f, 0.6));
    }
    const face = fillPolygon(new Uint8Array(pixels), width, height, facePolygon(landmarks, f, 0.15));
    if (hasParsing) for (let p = 0; p < pixels; p++) face[p] = Math.min(face[p]!, head[p]!);
    const lip = fillPolygon(new Uint8Array(pixels), width, height, lipPolygon(landmarks, f));
    let torso: Image8;
    const torsoFile = ['png', 'jpg'].map((ext) => `torso_imgs/${f}.${ext}`).find((file) => torsoDir && existsSync(join(src, file)));
    if (torsoFile) {
      const t = check(readImageFile(join(src, torsoFile), torsoFile), torsoFile);
      torso = t.alpha ? compositeOver(t, t.alpha, bg) : t;
    } else {
      if (torsoDir) throw new ImportError(`torso_imgs/${f}.png (or .jpg): file missing`);
      torso = compositeOver(bg, head, frame);
    }
    cached = { f, frame, torso, head, face, lip };
    if (f % Math.max(1, Math.round(n / 10)) === 0) log(`frame ${f + 1}/${n}`);
    return cached;
  };

  const name = options.name ?? (basename(resolve(src)) || 'imported');
  try {
    writeClip(out, {
      info: {
        name, fps: FPS, frameCount: n, width, height, intrinsics: intrinsics!, cropSize: options.cropSize ?? 64, split,
        source: `imported from the AD-NeRF/ER-NeRF layout at ${resolve(src)} by nerfad (src/data/import-adnerf.ts)` +
          (notes.length ? `; ${notes.join('; ')}` : ''),
      },
      tracks: { poses, landmarks, aus, boxes },
      audio: fitted,
      background: bg,
      frames: (f) => perFrame(f).frame,
      torso: (f) => perFrame(f).torso,
      masks: {
        head: (f) => maskImage(perFrame(f).head, width, height),
        face: (f) => maskImage(perFrame(f).face, width, height),
        lip: (f) => maskImage(perFrame(f).lip, width, height),
      },
    });
  } catch (e) {
    if (e instanceof DatasetError) {
      // The message names our file (e.g. poses.f32: poses[3] …); say where that came from.
      const origin = e.file === 'poses.f32' ? 'transform_matrix in the transform files' : e.file === 'landmarks.f32' ? 'ori_imgs/*.lms' : 'the source';
      throw new ImportError(`the imported data is not a valid clip: ${e.message} (from ${origin})`);
    }
    throw e;
  }
  if (copyNpy) copyFileSync(join(src, 'aud.npy'), join(out, 'aud.npy'));
  return { frameCount: n, width, height, notes };
}
