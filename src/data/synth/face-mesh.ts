/**
 * Face mesh recovery from a portrait with `@vladmandic/human` (MIT) on tfjs's wasm backend: BlazeFace detection
 * then the 468-point MediaPipe face mesh with relative depth. Models and the wasm binary load from node_modules —
 * no network: a file:// fetch shim serves them, since Node's fetch does not read files.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { RgbImage } from './image.ts';

const require = createRequire(import.meta.url);

export interface DetectedFace {
  /** 468 points [x, y, z] in image pixels; z is relative depth in pixel units, negative towards the camera. */
  mesh: [number, number, number][];
  box: [number, number, number, number];
  score: number;
  /** Head rotation estimated by human, radians. */
  yaw: number;
  pitch: number;
  roll: number;
}

let fetchShimmed = false;
function shimFileFetch(): void {
  if (fetchShimmed) return;
  fetchShimmed = true;
  const realFetch = globalThis.fetch;
  globalThis.fetch = (async (input: unknown, init?: RequestInit) => {
    const url = String((input as { url?: string })?.url ?? input);
    if (url.startsWith('file://')) return new Response(readFileSync(new URL(url)));
    return realFetch(input as RequestInfo, init);
  }) as typeof fetch;
}

/** Detects every face in the image (up to 5), largest first. */
export async function detectFaces(image: RgbImage): Promise<DetectedFace[]> {
  shimFileFetch();
  // The package's `exports` map lacks './' prefixes, so subpaths do not resolve: locate dist/ through its main entry.
  const humanDist = dirname(require.resolve('@vladmandic/human'));
  const humanMain = join(humanDist, 'human.node-wasm.js');
  const humanRoot = join(humanDist, '..');
  const wasmRoot = join(dirname(require.resolve('@tensorflow/tfjs-backend-wasm')), '..', 'dist');
  const { Human } = require(humanMain) as { Human: new (config: object) => HumanLike };
  const human = new Human({
    backend: 'wasm', debug: false, async: false, warmup: 'none', cacheSensitivity: 0,
    modelBasePath: pathToFileURL(join(humanRoot, 'models')).href + '/',
    wasmPath: pathToFileURL(wasmRoot).href + '/',
    face: {
      enabled: true, detector: { rotation: false, maxDetected: 5, minConfidence: 0.3 }, mesh: { enabled: true },
      iris: { enabled: false }, description: { enabled: false }, emotion: { enabled: false },
      antispoof: { enabled: false }, liveness: { enabled: false },
    },
    body: { enabled: false }, hand: { enabled: false }, object: { enabled: false }, gesture: { enabled: false },
    segmentation: { enabled: false }, filter: { enabled: false },
  });
  await human.load();
  const pixels = new Float32Array(image.width * image.height * 3);
  for (let i = 0; i < pixels.length; i++) pixels[i] = image.data[i]! * 255;
  const tensor = human.tf.tensor(pixels, [1, image.height, image.width, 3], 'float32');
  try {
    const result = await human.detect(tensor);
    return result.face
      .filter((f) => f.mesh && f.mesh.length >= 468)
      .map((f) => ({
        mesh: f.mesh.slice(0, 468).map((p) => [p[0], p[1], p[2] ?? 0] as [number, number, number]),
        box: f.box, score: f.score,
        yaw: f.rotation?.angle.yaw ?? 0, pitch: f.rotation?.angle.pitch ?? 0, roll: f.rotation?.angle.roll ?? 0,
      }))
      .sort((a, b) => b.box[2] * b.box[3] - a.box[2] * a.box[3]);
  } finally {
    tensor.dispose();
  }
}

/** The one clear, roughly frontal face of a portrait, or a clear error. */
export async function detectPortraitFace(image: RgbImage, name: string): Promise<DetectedFace> {
  const faces = (await detectFaces(image)).filter((f) => f.score >= 0.5);
  if (faces.length === 0) throw new Error(`synth: no face found in ${name}; give a portrait with one clear, frontal face`);
  const main = faces[0]!;
  const others = faces.slice(1).filter((f) => f.box[2] * f.box[3] > 0.25 * main.box[2] * main.box[3]);
  if (others.length > 0) throw new Error(`synth: ${faces.length} faces found in ${name}; give a portrait with exactly one clear face`);
  const deg = (r: number) => (r * 180) / Math.PI;
  if (Math.abs(deg(main.yaw)) > 25 || Math.abs(deg(main.pitch)) > 25) {
    throw new Error(`synth: the face in ${name} is not frontal enough (yaw ${deg(main.yaw).toFixed(0)}°, ` +
      `pitch ${deg(main.pitch).toFixed(0)}°; want both within ±25°)`);
  }
  if (main.box[2] < 64) throw new Error(`synth: the face in ${name} is too small (${main.box[2].toFixed(0)} px wide; want ≥ 64)`);
  return main;
}

interface HumanLike {
  load(): Promise<void>;
  tf: { tensor(data: Float32Array, shape: number[], dtype: string): { dispose(): void } };
  detect(input: unknown): Promise<{
    face: { mesh: number[][]; box: [number, number, number, number]; score: number;
      rotation?: { angle: { yaw: number; pitch: number; roll: number } } }[];
  }>;
}
