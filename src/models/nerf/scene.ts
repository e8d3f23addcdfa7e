/**
 * A procedural static scene with exact ground truth, for proving the NeRF building blocks: three textured solids
 * that partly occlude one another, inside the ball of radius BOUND around the origin, over a white background.
 *
 *   sphere  centre (0, 0, 0), radius 0.30          — a fine checkerboard in (longitude, latitude) with dark seams
 *   box     centre (0.28, −0.12, 0.22), half 0.12  — rotated 35° about y, red/white stripes 0.03 wide
 *   torus   centre (−0.22, 0.16, −0.14), R 0.17, r 0.055, tilted 60° about x — colour cycling around the ring
 *
 * Density is a soft step of each solid's signed distance, σ(x) = SIGMA_MAX · sigmoid(−sdf(x) / EDGE), and the colour
 * at x is the texture of the nearest solid. Ground-truth images come from the float64 volume-rendering reference
 * (`compositeReference`, the same math the GPU kernel implements) with dense samples inside the bounding ball, so
 * the fitted field and the truth are the same kind of object: the ideal fit reaches arbitrarily high PSNR.
 *
 * Cameras: pinhole (OpenGL convention, see src/kernels/render/rays.ts) on a sphere of radius CAMERA_DISTANCE,
 * looking at the origin, elevation 10°–60°, seeded azimuths.
 */
import { Rng } from '../../tensor/random.ts';
import { compositeReference } from '../../kernels/render/composite.ref.ts';
import { generateRaysReference, type Intrinsics } from '../../kernels/render/rays.ts';

export const BOUND = 0.62;
export const CAMERA_DISTANCE = 2.0;
const SIGMA_MAX = 200;
const EDGE = 0.006;

type Vec3 = [number, number, number];

const sub = (a: Vec3, b: Vec3): Vec3 => [a[0] - b[0], a[1] - b[1], a[2] - b[2]];
const length = (a: Vec3): number => Math.hypot(a[0], a[1], a[2]);
const rotateY = (p: Vec3, angle: number): Vec3 => [Math.cos(angle) * p[0] - Math.sin(angle) * p[2], p[1], Math.sin(angle) * p[0] + Math.cos(angle) * p[2]];
const rotateX = (p: Vec3, angle: number): Vec3 => [p[0], Math.cos(angle) * p[1] - Math.sin(angle) * p[2], Math.sin(angle) * p[1] + Math.cos(angle) * p[2]];

interface Solid {
  sdf(p: Vec3): number;
  colour(p: Vec3): Vec3;
}

const sphere: Solid = {
  sdf: (p) => length(p) - 0.3,
  colour: (p) => {
    const longitude = Math.atan2(p[2], p[0]);
    const latitude = Math.asin(Math.max(-1, Math.min(1, p[1] / (length(p) || 1))));
    const u = (longitude / Math.PI) * 8;
    const v = (latitude / Math.PI) * 8;
    const seam = Math.min(Math.abs(u - Math.round(u)), Math.abs(v - Math.round(v))) < 0.06;
    if (seam) return [0.1, 0.1, 0.15];
    return (Math.floor(u) + Math.floor(v)) % 2 === 0 ? [0.95, 0.55, 0.1] : [0.15, 0.35, 0.85];
  },
};

const boxCentre: Vec3 = [0.28, -0.12, 0.22];
const box: Solid = {
  sdf: (p) => {
    const q = rotateY(sub(p, boxCentre), -0.61).map((v) => Math.abs(v) - 0.12) as Vec3;
    const outside = length([Math.max(q[0], 0), Math.max(q[1], 0), Math.max(q[2], 0)]);
    return outside + Math.min(Math.max(q[0], q[1], q[2]), 0);
  },
  colour: (p) => {
    const local = rotateY(sub(p, boxCentre), -0.61);
    return Math.floor((local[0] + local[1]) / 0.03) % 2 === 0 ? [0.85, 0.1, 0.12] : [0.97, 0.95, 0.9];
  },
};

const torusCentre: Vec3 = [-0.22, 0.16, -0.14];
const torus: Solid = {
  sdf: (p) => {
    const q = rotateX(sub(p, torusCentre), 1.05);
    const ring = Math.hypot(q[0], q[2]) - 0.17;
    return Math.hypot(ring, q[1]) - 0.055;
  },
  colour: (p) => {
    const q = rotateX(sub(p, torusCentre), 1.05);
    const angle = Math.atan2(q[2], q[0]);
    const t = 0.5 + 0.5 * Math.sin(angle * 6);
    return [0.1 + 0.8 * t, 0.75, 0.2 + 0.5 * (1 - t)];
  },
};

const SOLIDS = [sphere, box, torus];

/** Density and colour of the scene at p. */
export function sceneField(p: Vec3): { sigma: number; colour: Vec3 } {
  let best = Infinity;
  let nearest = SOLIDS[0];
  for (const solid of SOLIDS) {
    const d = solid.sdf(p);
    if (d < best) {
      best = d;
      nearest = solid;
    }
  }
  return { sigma: SIGMA_MAX / (1 + Math.exp(best / EDGE)), colour: nearest.colour(p) };
}

export interface View {
  /** Camera-to-world, 3×4 row-major. */
  c2w: Float64Array;
  width: number;
  height: number;
  intrinsics: Intrinsics;
}

/** `count` cameras around the origin, looking at it, from a seeded stream. */
export function makeViews(count: number, size: number, seed: number, fovDegrees = 36): View[] {
  const rng = new Rng(seed);
  const focal = (0.5 * size) / Math.tan(((fovDegrees / 2) * Math.PI) / 180);
  return Array.from({ length: count }, () => {
    const azimuth = rng.range(0, 2 * Math.PI);
    const elevation = rng.range(10, 60) * (Math.PI / 180);
    const position: Vec3 = [
      CAMERA_DISTANCE * Math.cos(elevation) * Math.cos(azimuth),
      CAMERA_DISTANCE * Math.sin(elevation),
      CAMERA_DISTANCE * Math.cos(elevation) * Math.sin(azimuth),
    ];
    // OpenGL camera: back = from target to camera, right = up × back, up' = back × right.
    const back = position.map((v) => v / CAMERA_DISTANCE) as Vec3;
    const worldUp: Vec3 = [0, 1, 0];
    const right = normalise(cross(worldUp, back));
    const up = cross(back, right);
    const c2w = Float64Array.from([right[0], up[0], back[0], position[0], right[1], up[1], back[1], position[1], right[2], up[2], back[2], position[2]]);
    return { c2w, width: size, height: size, intrinsics: { fx: focal, fy: focal, cx: size / 2, cy: size / 2 } };
  });
}

function cross(a: Vec3, b: Vec3): Vec3 {
  return [a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]];
}

function normalise(a: Vec3): Vec3 {
  const l = length(a);
  return [a[0] / l, a[1] / l, a[2] / l];
}

/** Depth range (in the rays' z units) that covers the bounding ball from any camera. */
export const NEAR = CAMERA_DISTANCE - BOUND - 0.05;
export const FAR = CAMERA_DISTANCE + BOUND + 0.05;

/**
 * Ground-truth image [height·width·3] in [0, 1]: `samples` midpoint samples per ray between NEAR and FAR,
 * composited by the float64 reference over the white background.
 */
export function renderGroundTruth(view: View, samples = 512): Float64Array {
  const { width, height } = view;
  const pixels = Array.from({ length: width * height }, (_, i) => i);
  const rays = generateRaysReference(pixels, new Array(pixels.length).fill(0), view.c2w, width, view.intrinsics);
  const image = new Float64Array(width * height * 3);
  const sigmaRaw = new Float64Array(samples);
  const rgbRaw = new Float64Array(samples * 3);
  const z = new Float64Array(samples);
  const white = Float64Array.from([1, 1, 1]);
  const logit = (c: number): number => Math.log(Math.min(Math.max(c, 1e-4), 1 - 1e-4) / (1 - Math.min(Math.max(c, 1e-4), 1 - 1e-4)));
  for (let r = 0; r < pixels.length; r++) {
    for (let i = 0; i < samples; i++) {
      const t = NEAR + ((FAR - NEAR) * (i + 0.5)) / samples;
      z[i] = t;
      const p: Vec3 = [0, 1, 2].map((c) => rays.origin[r * 3 + c] + t * rays.direction[r * 3 + c]) as Vec3;
      const { sigma, colour } = length(p) > BOUND ? { sigma: 0, colour: [0, 0, 0] as Vec3 } : sceneField(p);
      // A density floor as in AD-NeRF (relu + 1e-6): the infinite last interval then hands leftover light to the background.
      sigmaRaw[i] = Math.log(sigma + 1e-6);
      for (let c = 0; c < 3; c++) rgbRaw[i * 3 + c] = logit(colour[c]);
    }
    // The last sample takes the background (white) with an infinite interval, as in training.
    const out = compositeReference({
      rays: 1,
      samples,
      sigmaRaw,
      rgbRaw,
      z,
      dirNorm: Float64Array.of(rays.dirNorm[r]),
      background: white,
      activation: 'exp',
    });
    for (let c = 0; c < 3; c++) image[r * 3 + c] = out[c];
  }
  return image;
}

/**
 * Ground-truth opacity [height·width] of each pixel: 1 − exp(−Σ σ_i δ_i) over the same samples as
 * `renderGroundTruth` (without its background sample), so image = premultiplied colour + (1 − alpha) · white.
 * Lets training composite over random backgrounds (instant-ngp), which pins empty space to zero density.
 */
export function renderGroundTruthAlpha(view: View, samples = 512): Float64Array {
  const { width, height } = view;
  const pixels = Array.from({ length: width * height }, (_, i) => i);
  const rays = generateRaysReference(pixels, new Array(pixels.length).fill(0), view.c2w, width, view.intrinsics);
  const alpha = new Float64Array(width * height);
  const dz = (FAR - NEAR) / samples;
  for (let r = 0; r < pixels.length; r++) {
    let opticalDepth = 0;
    for (let i = 0; i < samples - 1; i++) {
      const t = NEAR + dz * (i + 0.5);
      const p: Vec3 = [0, 1, 2].map((c) => rays.origin[r * 3 + c] + t * rays.direction[r * 3 + c]) as Vec3;
      const sigma = length(p) > BOUND ? 0 : sceneField(p).sigma;
      opticalDepth += (sigma + 1e-6) * dz * rays.dirNorm[r];
    }
    alpha[r] = 1 - Math.exp(-opticalDepth);
  }
  return alpha;
}
