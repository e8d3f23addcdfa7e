/**
 * The synthetic speaker generator: portrait + sentences → a clip in the nerfad dataset format (src/data/format.ts).
 *
 * Two stages, so a clip can be shipped small and re-rendered without a TTS program or face detection:
 *   1. `makeRecipe`: detect the face mesh (human), crop the portrait square around it, speak the sentences
 *      (Festival, a separate program) → recipe.json (mesh, phoneme timings, seed, sizes) + portrait.png + audio.
 *   2. `renderClip`: recipe + portrait + audio → every file of the clip (frames, torso, masks, poses, landmarks,
 *      AUs, boxes, background), deterministic for the recipe (pure float64 JS, no randomness beyond the seed).
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { AU_NAMES, AUDIO_SAMPLE_RATE, BOX_KINDS, LANDMARKS, writeClip, type ClipData, type Image8 } from '../format.ts';
import { decodeWavMono, resample } from '../wav.ts';
import { animate, type Animation } from './animation.ts';
import { detectPortraitFace, type DetectedFace } from './face-mesh.ts';
import { cropImage, decodeImageFile, encodePng, resizeImage, type RgbImage } from './image.ts';
import { buildScene, frameGeometry, renderFrame, type FrameGeometry, type RenderedFrame, type Scene } from './scene.ts';
import { festivalAvailable, SETUP_HINT, speakSentences, type PhonemeSegment } from './tts.ts';

export const RECIPE_FILE = 'recipe.json';
export const PORTRAIT_FILE = 'portrait.png';
export const RECIPE_FORMAT = 'nerfad-synth-recipe';
/** Largest side of the portrait crop kept in a recipe. */
export const PORTRAIT_MAX = 512;

export interface Recipe {
  format: typeof RECIPE_FORMAT;
  version: 1;
  name: string;
  seed: number;
  fps: number;
  size: number;
  supersample: number;
  cropSize: number;
  /** Where the portrait came from and the square crop taken of it (x0, y0, side), in its pixels. */
  photo: { file: string; crop: [number, number, number] };
  /** 468 × [x, y, z] face-mesh points in portrait.png pixels. */
  mesh: [number, number, number][];
  sentences: string[];
  segments: PhonemeSegment[];
}

export interface SynthOptions {
  photo: string;
  sentences: string[];
  out: string;
  seed?: number;
  size?: number;
  fps?: number;
  supersample?: number;
  name?: string;
  log?: (line: string) => void;
}

/** Reads a sentences file: one sentence per line; blank lines and lines starting with # are skipped. */
export function readSentences(path: string): string[] {
  const lines = readFileSync(path, 'utf8').split('\n').map((l) => l.trim()).filter((l) => l !== '' && !l.startsWith('#'));
  if (lines.length === 0) throw new Error(`synth: ${path} holds no sentences (one per line)`);
  return lines;
}

/** A square crop around the face: as large as the image allows up to 2.6× the face box, face a little above centre. */
export function squareCrop(width: number, height: number, face: DetectedFace): [number, number, number] {
  const [bx, by, bw, bh] = face.box;
  const side = Math.floor(Math.min(width, height, 2.6 * Math.max(bw, bh)));
  const cx = bx + bw / 2, cy = by + bh / 2 + 0.12 * side;
  const x0 = Math.round(Math.min(Math.max(cx - side / 2, 0), width - side));
  const y0 = Math.round(Math.min(Math.max(cy - side / 2, 0), height - side));
  return [x0, y0, side];
}

/** Stage 1: face mesh, crop, speech. Writes recipe.json, portrait.png and audio.wav (via the clip writer later). */
export async function makeRecipe(options: SynthOptions): Promise<{ recipe: Recipe; portrait: RgbImage; audio: Float32Array }> {
  if (!festivalAvailable()) throw new Error(`synth: the text-to-speech program \`festival\` is not installed; ${SETUP_HINT}`);
  const image = decodeImageFile(options.photo);
  const face = await detectPortraitFace(image, options.photo);
  const [x0, y0, side] = squareCrop(image.width, image.height, face);
  // Big photos are brought down to PORTRAIT_MAX pixels: plenty of texture for 128–256 px frames, and a small recipe.
  const scale = Math.min(1, PORTRAIT_MAX / side);
  const cropped = cropImage(image, x0, y0, side, side);
  const portrait = scale < 1 ? resizeImage(cropped, Math.round(side * scale), Math.round(side * scale)) : cropped;
  const k = portrait.width / side;
  const mesh = face.mesh.map(([x, y, z]) => [(x - x0) * k, (y - y0) * k, z * k] as [number, number, number]);
  const speech = speakSentences(options.sentences);
  let audio = speech.samples;
  if (speech.sampleRate !== AUDIO_SAMPLE_RATE) audio = resample(audio, speech.sampleRate, AUDIO_SAMPLE_RATE);
  const recipe: Recipe = {
    format: RECIPE_FORMAT, version: 1, name: options.name ?? 'synth', seed: options.seed ?? 1, fps: options.fps ?? 25,
    size: options.size ?? 128, supersample: options.supersample ?? 4, cropSize: 64,
    photo: { file: options.photo, crop: [x0, y0, side] }, mesh, sentences: options.sentences, segments: speech.segments,
  };
  return { recipe, portrait, audio };
}

export function readRecipe(dir: string): { recipe: Recipe; portrait: RgbImage; audio: Float32Array } {
  const path = join(dir, RECIPE_FILE);
  if (!existsSync(path)) throw new Error(`synth: ${path} is missing (not a synth clip directory)`);
  const recipe = JSON.parse(readFileSync(path, 'utf8')) as Recipe;
  if (recipe.format !== RECIPE_FORMAT || recipe.version !== 1) throw new Error(`synth: ${path} is not a version-1 ${RECIPE_FORMAT}`);
  if (!Array.isArray(recipe.mesh) || recipe.mesh.length < 468) throw new Error(`synth: ${path}: mesh must hold 468 points`);
  const portrait = decodeImageFile(join(dir, PORTRAIT_FILE));
  const audio = decodeWavMono(readFileSync(join(dir, 'audio.wav')), AUDIO_SAMPLE_RATE, 'audio.wav');
  return { recipe, portrait, audio };
}

/** Scene and animation of a recipe (what both the writer and the tests use). */
export function prepare(recipe: Recipe, portrait: RgbImage, audioSamples: number): { scene: Scene; animation: Animation; frameCount: number } {
  const face: DetectedFace = { mesh: recipe.mesh, box: [0, 0, 1, 1], score: 1, yaw: 0, pitch: 0, roll: 0 };
  const scene = buildScene(portrait, face, recipe.size, recipe.supersample);
  const duration = audioSamples / AUDIO_SAMPLE_RATE;
  const animation = animate(recipe.segments, duration, recipe.fps, recipe.seed);
  return { scene, animation, frameCount: animation.frameCount };
}

const clampBox = (x0: number, y0: number, x1: number, y1: number, size: number): [number, number, number, number] =>
  [Math.max(0, x0), Math.max(0, y0), Math.min(size, x1), Math.min(size, y1)];

function bounds(points: [number, number][]): [number, number, number, number] {
  let x0 = Infinity, y0 = Infinity, x1 = -Infinity, y1 = -Infinity;
  for (const [x, y] of points) { x0 = Math.min(x0, x); y0 = Math.min(y0, y); x1 = Math.max(x1, x); y1 = Math.max(y1, y); }
  return [x0, y0, x1, y1];
}

/** Face, lip and square crop boxes from the landmarks. */
export function boxesFromLandmarks(landmarks: [number, number][], size: number): [number, number, number, number][] {
  const grow = (b: number[], f: number) => { const mx = (b[2]! - b[0]!) * f, my = (b[3]! - b[1]!) * f; return [b[0]! - mx, b[1]! - my, b[2]! + mx, b[3]! + my]; };
  const face = grow(bounds(landmarks), 0.1);
  const lip = grow(bounds(landmarks.slice(48, 68)), 0.2);
  const side = Math.min(size, Math.round(1.15 * Math.max(face[2]! - face[0]!, face[3]! - face[1]!)));
  const cx = (face[0]! + face[2]!) / 2, cy = (face[1]! + face[3]!) / 2;
  const cx0 = Math.round(Math.min(Math.max(cx - side / 2, 0), size - side)), cy0 = Math.round(Math.min(Math.max(cy - side / 2, 0), size - side));
  return [clampBox(face[0]!, face[1]!, face[2]!, face[3]!, size), clampBox(lip[0]!, lip[1]!, lip[2]!, lip[3]!, size), [cx0, cy0, cx0 + side, cy0 + side]];
}

const toImage8 = (im: RgbImage): Image8 => ({ width: im.width, height: im.height, channels: 3, data: Uint8Array.from(im.data, (v) => Math.max(0, Math.min(255, Math.round(v * 255)))) });
const toMask8 = (mask: Float64Array, size: number): Image8 => ({ width: size, height: size, channels: 1, data: Uint8Array.from(mask, (v) => (v >= 0.5 ? 255 : 0)) });

/** Stage 2: writes the whole clip into `dir` (recipe.json and portrait.png included). Returns seconds per frame. */
export function renderClip(dir: string, recipe: Recipe, portrait: RgbImage, audio: Float32Array, log: (line: string) => void = () => {}): { frameCount: number; secondsPerFrame: number } {
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, RECIPE_FILE), JSON.stringify(recipe) + '\n');
  writeFileSync(join(dir, PORTRAIT_FILE), encodePng(portrait));
  const { scene, animation, frameCount } = prepare(recipe, portrait, audio.length);
  // The writer wants the audio within one frame of the video; the last partial frame's audio is dropped.
  const clipAudio = audio.subarray(0, Math.round((frameCount * AUDIO_SAMPLE_RATE) / recipe.fps));
  const poses = new Float32Array(frameCount * 16), landmarks = new Float32Array(frameCount * LANDMARKS * 2);
  const aus = new Float32Array(frameCount * AU_NAMES.length), boxes = new Float32Array(frameCount * BOX_KINDS.length * 4);
  const geometry: FrameGeometry[] = [];
  for (let f = 0; f < frameCount; f++) {
    const g = frameGeometry(scene, animation.aus[f]!, animation.head[f]!);
    geometry.push(g);
    poses.set(g.c2w, f * 16);
    g.landmarks.forEach(([x, y], l) => { landmarks[(f * LANDMARKS + l) * 2] = x; landmarks[(f * LANDMARKS + l) * 2 + 1] = y; });
    AU_NAMES.forEach((name, a) => { aus[f * AU_NAMES.length + a] = animation.aus[f]![name]; });
    boxesFromLandmarks(g.landmarks, recipe.size).forEach((b, k) => boxes.set(b, (f * BOX_KINDS.length + k) * 4));
  }
  const trainCount = Math.max(1, Math.round((frameCount * 10) / 11));
  let cached: { f: number; frame: RenderedFrame } | null = null;
  let rendering = 0;
  const started = performance.now();
  const rendered = (f: number) => {
    if (cached?.f !== f) {
      const t0 = performance.now();
      cached = { f, frame: renderFrame(scene, animation.aus[f]!, animation.head[f]!, geometry[f]) };
      rendering += performance.now() - t0;
      if (f % 250 === 0) log(`frame ${f}/${frameCount}`);
    }
    return cached.frame;
  };
  const plate = toImage8(scene.background);
  const clip: ClipData = {
    info: {
      name: recipe.name, fps: recipe.fps, frameCount, width: recipe.size, height: recipe.size, intrinsics: scene.intrinsics,
      cropSize: recipe.cropSize, split: { train: range(0, trainCount), val: range(trainCount, frameCount) },
      source: `nerfad synth (seed ${recipe.seed}): photo-textured MediaPipe face mesh from ${recipe.photo.file}, speech by Festival; ` +
        'background = the portrait with the head region inpainted (torso included, static); torso frames = that plate',
    },
    tracks: { poses, landmarks, aus, boxes },
    audio: clipAudio,
    background: plate,
    frames: (f) => toImage8(rendered(f).image),
    torso: () => plate,
    masks: {
      head: (f) => toMask8(rendered(f).headMask, recipe.size),
      face: (f) => toMask8(rendered(f).faceMask, recipe.size),
      lip: (f) => toMask8(rendered(f).lipMask, recipe.size),
    },
  };
  writeClip(dir, clip);
  const total = (performance.now() - started) / 1000;
  log(`rendered ${frameCount} frames: ${(rendering / frameCount).toFixed(1)} ms/frame rendering, ${((total * 1000) / frameCount).toFixed(1)} ms/frame with writing`);
  return { frameCount, secondsPerFrame: total / frameCount };
}

const range = (a: number, b: number) => Array.from({ length: Math.max(0, b - a) }, (_, i) => a + i);

/** Portrait + sentences → a complete clip in `options.out`. */
export async function synthesize(options: SynthOptions): Promise<{ frameCount: number; secondsPerFrame: number; recipe: Recipe }> {
  const log = options.log ?? (() => {});
  const t0 = performance.now();
  const { recipe, portrait, audio } = await makeRecipe(options);
  log(`face mesh and speech: ${((performance.now() - t0) / 1000).toFixed(1)} s, ${(audio.length / AUDIO_SAMPLE_RATE).toFixed(1)} s of audio`);
  const result = renderClip(options.out, recipe, portrait, audio, log);
  return { ...result, recipe };
}

/** Re-renders a clip directory from its recipe.json, portrait.png and audio.wav (no TTS or face detection needed). */
export function rerenderClip(dir: string, log: (line: string) => void = () => {}): { frameCount: number; secondsPerFrame: number } {
  const { recipe, portrait, audio } = readRecipe(dir);
  return renderClip(dir, recipe, portrait, audio, log);
}

/** The shipped synthetic clip (see assets/README.md). */
export const DEFAULT_CLIP_DIR = 'assets/default-clip';

/** Renders a synth clip's images if any is missing (the shipped clip comes without them). True when it rendered. */
export function ensureClipImages(dir = DEFAULT_CLIP_DIR, log: (line: string) => void = () => {}): boolean {
  const manifest = JSON.parse(readFileSync(join(dir, 'clip.json'), 'utf8')) as { frame_count: number };
  const last = String(manifest.frame_count - 1).padStart(6, '0');
  const complete = ['frames', 'torso', 'masks/head', 'masks/face', 'masks/lip'].every((sub) => existsSync(join(dir, sub, `${last}.png`)) && existsSync(join(dir, sub, '000000.png')));
  if (complete) return false;
  rerenderClip(dir, log);
  return true;
}
