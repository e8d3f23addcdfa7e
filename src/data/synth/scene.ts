/**
 * The scene: the static plate (portrait with the head region inpainted), the static torso layer, the moving head,
 * the output camera, and per-frame rendering with its exact ground truth (pose, landmarks, masks).
 *
 * The output camera is the portrait camera rescaled to `size`×`size`: fx = fy = PHOTO_FOCAL·size, cx = cy = size/2,
 * OpenGL axes, pixel (i, j) covering [i, i+1) × [j, j+1) so a point projects to x = cx + fx·X/(−Z), y = cy − fy·Y/(−Z).
 * The world frame is the head frame: per frame the head pose is head→camera [R | t], and c2w = [Rᵀ | −Rᵀt].
 */
import type { AuFrame, HeadMotion } from './animation.ts';
import { buildHead, deformHead, LABEL, mouthInterior, PHOTO_FOCAL, type HeadModel } from './head.ts';
import { resizeImage, type RgbImage } from './image.ts';
import { IBUG68_FROM_MESH } from './mesh-topology.ts';
import type { DetectedFace } from './face-mesh.ts';
import { clearTarget, createTarget, drawTriangle, type RasterTarget, type ScreenVertex } from './raster.ts';

export interface Intrinsics { fx: number; fy: number; cx: number; cy: number }

export interface Scene {
  size: number;
  supersample: number;
  intrinsics: Intrinsics;
  head: HeadModel;
  photo: RgbImage;
  /** Background plate at the output size and at the supersampled size. */
  background: RgbImage;
  backgroundSs: RgbImage;
  /** Static layer (torso and the rest of the scene outside the head region): RGB = the photo, alpha = 1 − head region. */
  torsoAlpha: Float64Array;
  torso: RgbImage;
  target: RasterTarget;
}

/** Row-major 4×4 matrices as plain arrays of 16. */
export type Mat4 = number[];

export function headPose(head: HeadModel, motion: HeadMotion): Mat4 {
  const rad = Math.PI / 180;
  const [cy, sy] = [Math.cos(motion.yaw * rad), Math.sin(motion.yaw * rad)];
  const [cp, sp] = [Math.cos(motion.pitch * rad), Math.sin(motion.pitch * rad)];
  const [cr, sr] = [Math.cos(motion.roll * rad), Math.sin(motion.roll * rad)];
  const Ry = [cy, 0, sy, 0, 1, 0, -sy, 0, cy], Rx = [1, 0, 0, 0, cp, -sp, 0, sp, cp], Rz = [cr, -sr, 0, sr, cr, 0, 0, 0, 1];
  const mul = (a: number[], b: number[]) => Array.from({ length: 9 }, (_, k) => {
    const r = Math.floor(k / 3), c = k % 3;
    return a[r * 3]! * b[c]! + a[r * 3 + 1]! * b[3 + c]! + a[r * 3 + 2]! * b[6 + c]!;
  });
  const R = mul(mul(Ry, Rx), Rz);
  const t = [head.headCentre[0] + motion.tx, head.headCentre[1] + motion.ty, head.headCentre[2] + motion.tz];
  return [R[0]!, R[1]!, R[2]!, t[0]!, R[3]!, R[4]!, R[5]!, t[1]!, R[6]!, R[7]!, R[8]!, t[2]!, 0, 0, 0, 1];
}

/** Inverse of a rigid [R | t]: [Rᵀ | −Rᵀ t]. */
export function invertRigid(m: Mat4): Mat4 {
  const R = [m[0]!, m[1]!, m[2]!, m[4]!, m[5]!, m[6]!, m[8]!, m[9]!, m[10]!];
  const t = [m[3]!, m[7]!, m[11]!];
  const out: number[] = [];
  for (let r = 0; r < 3; r++) {
    const row = [R[r]!, R[3 + r]!, R[6 + r]!];
    out.push(row[0]!, row[1]!, row[2]!, -(row[0]! * t[0]! + row[1]! * t[1]! + row[2]! * t[2]!));
  }
  out.push(0, 0, 0, 1);
  return out;
}

export function transformPoint(m: Mat4, x: number, y: number, z: number): [number, number, number] {
  return [m[0]! * x + m[1]! * y + m[2]! * z + m[3]!, m[4]! * x + m[5]! * y + m[6]! * z + m[7]!, m[8]! * x + m[9]! * y + m[10]! * z + m[11]!];
}

export function project(k: Intrinsics, p: readonly number[]): [number, number] {
  return [k.cx + (k.fx * p[0]!) / -p[2]!, k.cy - (k.fy * p[1]!) / -p[2]!];
}

/** Fills the unknown pixels (mask 0) of an image smoothly from the known ones: push-pull over an image pyramid. */
export function inpaint(im: RgbImage, known: Float64Array): RgbImage {
  type Level = { w: number; h: number; c: Float64Array; k: Float64Array };
  const levels: Level[] = [];
  let cur: Level = { w: im.width, h: im.height, c: new Float64Array(im.data), k: Float64Array.from(known) };
  for (let i = 0; i < cur.w * cur.h; i++) for (let ch = 0; ch < 3; ch++) cur.c[i * 3 + ch]! *= cur.k[i]!;
  levels.push(cur);
  while (cur.w > 1 || cur.h > 1) {
    const w = Math.max(1, cur.w >> 1), h = Math.max(1, cur.h >> 1);
    const next: Level = { w, h, c: new Float64Array(w * h * 3), k: new Float64Array(w * h) };
    for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) {
      let kk = 0; const cc = [0, 0, 0];
      for (let dy = 0; dy < 2; dy++) for (let dx = 0; dx < 2; dx++) {
        const sx = Math.min(cur.w - 1, 2 * x + dx), sy = Math.min(cur.h - 1, 2 * y + dy), i = sy * cur.w + sx;
        kk += cur.k[i]!; for (let ch = 0; ch < 3; ch++) cc[ch]! += cur.c[i * 3 + ch]!;
      }
      const o = y * w + x;
      next.k[o] = kk / 4; for (let ch = 0; ch < 3; ch++) next.c[o * 3 + ch] = cc[ch]! / 4;
    }
    levels.push(next);
    cur = next;
  }
  // Pull back up: premultiplied colour / weight, missing weight filled from the coarser level.
  for (let l = levels.length - 2; l >= 0; l--) {
    const fine = levels[l]!, coarse = levels[l + 1]!;
    for (let y = 0; y < fine.h; y++) for (let x = 0; x < fine.w; x++) {
      const i = y * fine.w + x;
      // Bilinear lookup of the (already complete) coarser level at this pixel's centre.
      const fx = Math.min(Math.max((x + 0.5) / 2 - 0.5, 0), coarse.w - 1), fy = Math.min(Math.max((y + 0.5) / 2 - 0.5, 0), coarse.h - 1);
      const x0 = Math.floor(fx), y0 = Math.floor(fy), x1 = Math.min(x0 + 1, coarse.w - 1), y1 = Math.min(y0 + 1, coarse.h - 1);
      const ax = fx - x0, ay = fy - y0;
      const k = Math.min(1, fine.k[i]!);
      for (let ch = 0; ch < 3; ch++) {
        const at = (xx: number, yy: number) => coarse.c[(yy * coarse.w + xx) * 3 + ch]! / Math.max(1e-12, coarse.k[yy * coarse.w + xx]!);
        const filled = (at(x0, y0) * (1 - ax) + at(x1, y0) * ax) * (1 - ay) + (at(x0, y1) * (1 - ax) + at(x1, y1) * ax) * ay;
        fine.c[i * 3 + ch] = fine.c[i * 3 + ch]! + (1 - k) * filled;
      }
      fine.k[i] = 1;
    }
  }
  return { width: im.width, height: im.height, data: levels[0]!.c };
}

/** Rasterises a polygon into a coverage mask (1 inside) on an N×N grid (even-odd rule, pixel centres). */
export function polygonMask(points: [number, number][], width: number, height: number): Float64Array {
  const mask = new Float64Array(width * height);
  for (let y = 0; y < height; y++) {
    const sy = y + 0.5, xs: number[] = [];
    for (let k = 0; k < points.length; k++) {
      const [x0, y0] = points[k]!, [x1, y1] = points[(k + 1) % points.length]!;
      if ((y0 <= sy) !== (y1 <= sy)) xs.push(x0 + ((sy - y0) / (y1 - y0)) * (x1 - x0));
    }
    xs.sort((a, b) => a - b);
    for (let k = 0; k + 1 < xs.length; k += 2) {
      for (let x = Math.max(0, Math.ceil(xs[k]! - 0.5)); x <= Math.min(width - 1, Math.floor(xs[k + 1]! - 0.5)); x++) mask[y * width + x] = 1;
    }
  }
  return mask;
}

export function buildScene(photo: RgbImage, face: DetectedFace, size: number, supersample = 4): Scene {
  if (photo.width !== photo.height) throw new Error('synth: buildScene wants a square portrait crop');
  const head = buildHead(face, photo.width);
  const ring = head.outerRing.map((i) => [head.uv[i * 2]!, head.uv[i * 2 + 1]!] as [number, number]);
  const headRegion = polygonMask(ring, photo.width, photo.height);
  const known = headRegion.map((v) => 1 - v);
  const plate = inpaint(photo, known);
  const background = resizeImage(plate, size, size);
  const backgroundSs = resizeImage(plate, size * supersample, size * supersample);
  const knownRgb = new Float64Array(known.length * 3);
  for (let i = 0; i < known.length; i++) knownRgb[i * 3] = knownRgb[i * 3 + 1] = knownRgb[i * 3 + 2] = known[i]!;
  const torsoFull = resizeImage({ width: photo.width, height: photo.height, data: knownRgb }, size, size);
  const torsoAlpha = new Float64Array(size * size);
  for (let i = 0; i < size * size; i++) torsoAlpha[i] = torsoFull.data[i * 3]!;
  return {
    size, supersample, head, photo, background, backgroundSs, torso: resizeImage(photo, size, size), torsoAlpha,
    intrinsics: { fx: PHOTO_FOCAL * size, fy: PHOTO_FOCAL * size, cx: size / 2, cy: size / 2 },
    target: createTarget(size * supersample, size * supersample),
  };
}

export interface FrameGeometry {
  pose: Mat4;
  c2w: Mat4;
  /** Deformed vertices in the head frame and in the camera frame, [V, 3]. */
  local: Float64Array;
  camera: Float64Array;
  /** 68 iBUG landmarks in output pixels (continuous coordinates): the projected mesh vertices. */
  landmarks: [number, number][];
}

/** Pose, deformed mesh and landmarks of one frame (cheap: no rasterising). */
export function frameGeometry(scene: Scene, aus: AuFrame, motion: HeadMotion): FrameGeometry {
  const { head } = scene;
  const pose = headPose(head, motion);
  const local = deformHead(head, aus);
  const V = head.vertexCount;
  const camera = new Float64Array(V * 3);
  for (let i = 0; i < V; i++) camera.set(transformPoint(pose, local[i * 3]!, local[i * 3 + 1]!, local[i * 3 + 2]!), i * 3);
  const landmarks = IBUG68_FROM_MESH.map((i) => project(scene.intrinsics, [camera[i * 3]!, camera[i * 3 + 1]!, camera[i * 3 + 2]!]));
  return { pose, c2w: invertRigid(pose), local, camera, landmarks };
}

export interface RenderedFrame extends FrameGeometry {
  image: RgbImage;
  /** Per-pixel masks in [0, 1] (fraction of supersamples): head (incl. hair ring), face skin+lips+mouth, lips+mouth. */
  headMask: Float64Array;
  faceMask: Float64Array;
  lipMask: Float64Array;
}

export function renderFrame(scene: Scene, aus: AuFrame, motion: HeadMotion, geometry = frameGeometry(scene, aus, motion)): RenderedFrame {
  const { head, target: t, supersample: ss, size } = scene;
  const { pose, local, camera: cam } = geometry;
  const V = head.vertexCount;
  const kSs: Intrinsics = { fx: scene.intrinsics.fx * ss, fy: scene.intrinsics.fy * ss, cx: scene.intrinsics.cx * ss, cy: scene.intrinsics.cy * ss };
  clearTarget(t);
  const screen: ScreenVertex[] = new Array(V);
  for (let i = 0; i < V; i++) {
    const p = [cam[i * 3]!, cam[i * 3 + 1]!, cam[i * 3 + 2]!];
    const [x, y] = project(kSs, p);
    screen[i] = { x, y, w: -p[2]!, a: head.uv[i * 2]!, b: head.uv[i * 2 + 1]!, c: 0, alpha: head.alpha[i]! };
  }
  for (let k = 0; k < head.triangles.length; k += 3) {
    drawTriangle(t, screen[head.triangles[k]!]!, screen[head.triangles[k + 1]!]!, screen[head.triangles[k + 2]!]!,
      head.triangleLabel[k / 3]!, scene.photo);
  }
  for (const tri of mouthInterior(head, local, aus)) {
    const vs = tri.points.map((p, j) => {
      const q = transformPoint(pose, p[0], p[1], p[2]);
      const [x, y] = project(kSs, q);
      const col = tri.colors[j]!;
      return { x, y, w: -q[2], a: col[0], b: col[1], c: col[2], alpha: 1 };
    });
    drawTriangle(t, vs[0]!, vs[1]!, vs[2]!, tri.label, null, tri.depthBias);
  }
  // Composite over the plate (the static torso is part of it outside the head region), then box-filter down.
  const image: RgbImage = { width: size, height: size, data: new Float64Array(size * size * 3) };
  const headMask = new Float64Array(size * size), faceMask = new Float64Array(size * size), lipMask = new Float64Array(size * size);
  const bg = scene.backgroundSs.data, W = size * ss, n = ss * ss;
  for (let y = 0; y < size; y++) for (let x = 0; x < size; x++) {
    let r = 0, g = 0, b = 0, mh = 0, mf = 0, ml = 0;
    for (let dy = 0; dy < ss; dy++) for (let dx = 0; dx < ss; dx++) {
      const i = (y * ss + dy) * W + (x * ss + dx);
      const label = t.label[i]!;
      const a = label ? t.alpha[i]! : 0;
      r += bg[i * 3]! * (1 - a) + t.color[i * 3]! * a;
      g += bg[i * 3 + 1]! * (1 - a) + t.color[i * 3 + 1]! * a;
      b += bg[i * 3 + 2]! * (1 - a) + t.color[i * 3 + 2]! * a;
      if (label && a >= 0.5) mh++;
      if (label >= LABEL.face) mf++;
      if (label >= LABEL.lips) ml++;
    }
    const o = y * size + x;
    image.data[o * 3] = r / n; image.data[o * 3 + 1] = g / n; image.data[o * 3 + 2] = b / n;
    headMask[o] = mh / n; faceMask[o] = mf / n; lipMask[o] = ml / n;
  }
  return { ...geometry, image, headMask, faceMask, lipMask };
}
