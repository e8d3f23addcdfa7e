/**
 * The photo-textured 3D head: the 468-point face mesh lifted into 3D from the portrait, two rings around the face
 * oval that carry hair/ears/headwear (the outer one fading to transparent), AU-driven deformation of jaw, lips and
 * eyelids, and a mouth interior (dark cavity, upper and lower teeth).
 *
 * Geometry. The portrait (a square crop, N×N pixels) is modelled as seen by a pinhole camera with focal length
 * PHOTO_FOCAL·N at the image centre. The face is scaled so its outer eye corners are EYE_SPAN metres apart; a mesh
 * point (u, v, z) — pixels, z relative depth in pixels, negative towards the camera — sits at camera depth
 * d = D + z·s (s metres per pixel at the face, D = f·s) and camera position X = (u − c)·d/f, Y = −(v − c)·d/f, Z = −d
 * (OpenGL camera: x right, y up, looking down −z). The head frame has the same axes with its origin at the skull
 * centre, HEAD_DEPTH metres behind the mean face surface; its rest pose in the camera is a pure translation.
 * Texture coordinates are each vertex's rest pixel in the portrait, so the rest pose reproduces the photo.
 */
import type { AuFrame } from './animation.ts';
import type { DetectedFace } from './face-mesh.ts';
import {
  FACE_OVAL, LEFT_EYE_LOWER0, LEFT_EYE_UPPER0, LEFT_EYE_UPPER1, LIPS_LOWER_INNER, LIPS_LOWER_OUTER,
  LIPS_LOWER_SEMI_INNER, LIPS_LOWER_SEMI_OUTER, LIPS_UPPER_INNER, LIPS_UPPER_OUTER, LIPS_UPPER_SEMI_INNER,
  LIPS_UPPER_SEMI_OUTER, MESH_TRIANGLES, RIGHT_EYE_LOWER0, RIGHT_EYE_UPPER0, RIGHT_EYE_UPPER1,
} from './mesh-topology.ts';

export const PHOTO_FOCAL = 1.6;
export const EYE_SPAN = 0.095;
export const HEAD_DEPTH = 0.09;
export const MESH_VERTICES = 468;

/** Triangle kinds, also the labels written by the rasteriser. */
export const LABEL = { ring: 1, face: 2, lips: 3, cavity: 4, teeth: 5 } as const;

export interface HeadModel {
  /** Portrait size (square) and its camera. */
  photoSize: number;
  photoFocal: number;
  /** Rest vertex positions in the head frame, metres, [V, 3]. */
  rest: Float64Array;
  /** Texture coordinates in portrait pixels, [V, 2]. */
  uv: Float64Array;
  alpha: Float64Array;
  triangles: Uint32Array;
  triangleLabel: Uint8Array;
  /** Head-frame origin in the portrait camera (the rest translation). */
  headCentre: [number, number, number];
  jawWeight: Float64Array;
  jawPivot: [number, number, number];
  mouthWidth: number;
  mouthCentre: [number, number, number];
  /** Vertex index ranges of the rings, for the inpainting polygon. */
  outerRing: number[];
  vertexCount: number;
}

const smoothstep = (a: number, b: number, x: number) => { const t = Math.min(1, Math.max(0, (x - a) / (b - a))); return t * t * (3 - 2 * t); };

/** Builds the head from a detected face whose mesh is in the pixels of the N×N portrait crop. */
export function buildHead(face: DetectedFace, photoSize: number): HeadModel {
  const N = photoSize, f = PHOTO_FOCAL * N, c = N / 2;
  const pix: [number, number, number][] = face.mesh.map((p) => [p[0], p[1], p[2]]);
  const eye = (a: number, b: number) => Math.hypot(pix[a]![0] - pix[b]![0], pix[a]![1] - pix[b]![1]);
  const s = EYE_SPAN / eye(33, 263);
  const D = f * s;

  // Rings around the face oval: ring A (opaque) carries hair/headwear, ring B (transparent) fades into the plate.
  const ovalCentre = [0, 0];
  for (const i of FACE_OVAL) { ovalCentre[0]! += pix[i]![0] / FACE_OVAL.length; ovalCentre[1]! += pix[i]![1] / FACE_OVAL.length; }
  const faceWidthPx = eye(234, 454);
  const ringA: number[] = [], ringB: number[] = [];
  for (const i of FACE_OVAL) {
    const [u, v, z] = pix[i]!;
    const du = u - ovalCentre[0]!, dv = v - ovalCentre[1]!, len = Math.hypot(du, dv);
    const up = -dv / len;
    const k = up >= 0 ? 1.2 + 0.85 * up * up : 1.2 - 0.17 * Math.pow(-up, 1.5);
    for (const [ring, scale] of [[ringA, k], [ringB, k * 1.1 + 0.02]] as const) {
      const ru = Math.min(N - 0.5, Math.max(0.5, ovalCentre[0]! + du * scale));
      const rv = Math.min(N - 0.5, Math.max(0.5, ovalCentre[1]! + dv * scale));
      ring.push(pix.length);
      pix.push([ru, rv, z + 0.3 * (scale - 1) * faceWidthPx]);
    }
  }
  const V = pix.length;
  const cam = new Float64Array(V * 3), uv = new Float64Array(V * 2), alpha = new Float64Array(V).fill(1);
  for (let i = 0; i < V; i++) {
    const [u, v, z] = pix[i]!;
    const d = D + z * s;
    cam[i * 3] = ((u - c) * d) / f; cam[i * 3 + 1] = (-(v - c) * d) / f; cam[i * 3 + 2] = -d;
    uv[i * 2] = u; uv[i * 2 + 1] = v;
  }
  for (const i of ringB) alpha[i] = 0;

  let meanZ = 0;
  for (let i = 0; i < MESH_VERTICES; i++) meanZ += cam[i * 3 + 2]! / MESH_VERTICES;
  const headCentre: [number, number, number] = [0, 0, meanZ - HEAD_DEPTH];
  for (const i of FACE_OVAL) { headCentre[0] += cam[i * 3]! / FACE_OVAL.length; headCentre[1] += cam[i * 3 + 1]! / FACE_OVAL.length; }
  const rest = new Float64Array(V * 3);
  for (let i = 0; i < V; i++) for (let k = 0; k < 3; k++) rest[i * 3 + k] = cam[i * 3 + k]! - headCentre[k]!;

  // Triangles: the face mesh (lips labelled), then quad strips oval→A→B.
  const lipSet = new Set([...LIPS_UPPER_INNER, ...LIPS_LOWER_INNER, ...LIPS_UPPER_OUTER, ...LIPS_LOWER_OUTER,
    ...LIPS_UPPER_SEMI_INNER, ...LIPS_LOWER_SEMI_INNER, ...LIPS_UPPER_SEMI_OUTER, ...LIPS_LOWER_SEMI_OUTER]);
  const tris: number[] = [], labels: number[] = [];
  for (let t = 0; t < MESH_TRIANGLES.length; t += 3) {
    const a = MESH_TRIANGLES[t]!, b = MESH_TRIANGLES[t + 1]!, d = MESH_TRIANGLES[t + 2]!;
    tris.push(a, b, d);
    labels.push(lipSet.has(a) && lipSet.has(b) && lipSet.has(d) ? LABEL.lips : LABEL.face);
  }
  const strip = (inner: readonly number[], outer: readonly number[]) => {
    for (let k = 0; k < inner.length; k++) {
      const k1 = (k + 1) % inner.length;
      tris.push(inner[k]!, outer[k]!, outer[k1]!, inner[k]!, outer[k1]!, inner[k1]!);
      labels.push(LABEL.ring, LABEL.ring);
    }
  };
  strip(FACE_OVAL, ringA);
  strip(ringA, ringB);

  // Jaw: lower lip and chin follow the jaw fully, upper lip not at all, cheeks blend by height.
  const P = (i: number): [number, number, number] => [rest[i * 3]!, rest[i * 3 + 1]!, rest[i * 3 + 2]!];
  const cornerY = 0.5 * (P(61)[1] + P(291)[1]), chinY = P(152)[1];
  const lower = new Set([...LIPS_LOWER_INNER, ...LIPS_LOWER_SEMI_INNER, ...LIPS_LOWER_SEMI_OUTER, ...LIPS_LOWER_OUTER]);
  const upper = new Set([...LIPS_UPPER_INNER, ...LIPS_UPPER_SEMI_INNER, ...LIPS_UPPER_SEMI_OUTER, ...LIPS_UPPER_OUTER]);
  const corners = new Set([61, 291, 78, 308, 62, 292, 76, 306]);
  const jawWeight = new Float64Array(V);
  for (let i = 0; i < V; i++) {
    if (corners.has(i)) jawWeight[i] = 0.45;
    else if (lower.has(i)) jawWeight[i] = 1;
    else if (upper.has(i)) jawWeight[i] = 0;
    else jawWeight[i] = smoothstep(-0.1, 0.45, (cornerY - rest[i * 3 + 1]!) / (cornerY - chinY));
  }
  const jawPivot: [number, number, number] = [0, P(2)[1] + 0.01, 0.5 * (P(234)[2] + P(454)[2]) - 0.03];
  const mouthCentre: [number, number, number] = [0.5 * (P(61)[0] + P(291)[0]), 0.5 * (P(13)[1] + P(14)[1]), 0.5 * (P(13)[2] + P(14)[2])];
  const mouthWidth = Math.hypot(P(61)[0] - P(291)[0], P(61)[1] - P(291)[1]);

  return {
    photoSize: N, photoFocal: f, rest, uv, alpha, triangles: Uint32Array.from(tris), triangleLabel: Uint8Array.from(labels),
    headCentre, jawWeight, jawPivot, mouthWidth, mouthCentre, outerRing: ringB, vertexCount: V,
  };
}

/** Jaw opening angle (radians) for an AU26 intensity. */
export const jawAngle = (au26: number) => ((Math.min(5, Math.max(0, au26)) / 5) * 13 * Math.PI) / 180;

function rotateAboutX(p: number[], pivot: readonly number[], angle: number): [number, number, number] {
  const y = p[1]! - pivot[1]!, z = p[2]! - pivot[2]!, cs = Math.cos(angle), sn = Math.sin(angle);
  return [p[0]!, pivot[1]! + y * cs - z * sn, pivot[2]! + y * sn + z * cs];
}

/** Vertex positions in the head frame for the given AUs ([V, 3], metres). */
export function deformHead(head: HeadModel, aus: AuFrame): Float64Array {
  const out = Float64Array.from(head.rest);
  const W = head.mouthWidth, [mx, my] = head.mouthCentre;
  const theta = jawAngle(aus.AU26);
  const a25 = aus.AU25 / 5, a10 = aus.AU10 / 5, a20 = aus.AU20 / 5, a14 = aus.AU14 / 5;
  const lowerW = new Map<number, number>(), upperW = new Map<number, number>();
  for (const [ring, w] of [[LIPS_LOWER_INNER, 1], [LIPS_LOWER_SEMI_INNER, 1], [LIPS_LOWER_SEMI_OUTER, 0.7], [LIPS_LOWER_OUTER, 0.45]] as const) {
    for (const i of ring) lowerW.set(i, w);
  }
  for (const [ring, w] of [[LIPS_UPPER_INNER, 1], [LIPS_UPPER_SEMI_INNER, 1], [LIPS_UPPER_SEMI_OUTER, 0.85], [LIPS_UPPER_OUTER, 0.7]] as const) {
    for (const i of ring) upperW.set(i, w);
  }
  for (const i of [61, 291, 78, 308, 62, 292, 76, 306]) { lowerW.delete(i); upperW.delete(i); }
  for (let i = 0; i < head.vertexCount; i++) {
    const p = [out[i * 3]!, out[i * 3 + 1]!, out[i * 3 + 2]!];
    const rx = (p[0]! - mx) / (W / 2), ry = (p[1]! - my) / (W / 2);
    // Lip shapes before the jaw rotation, so the lower lip rides on the jaw.
    const lw = lowerW.get(i) ?? 0, uw = upperW.get(i) ?? 0;
    p[1]! -= lw * a25 * 0.1 * W;
    p[1]! += uw * (a25 * 0.03 * W + a10 * 0.07 * W);
    const nearMouth = Math.exp(-((ry / 0.9) ** 2)) * Math.exp(-(Math.max(0, Math.abs(rx) - 1) ** 2) / 0.5);
    p[0]! += a20 * 0.12 * (W / 2) * Math.max(-1.2, Math.min(1.2, rx)) * nearMouth;
    const corner = Math.exp(-((Math.abs(rx) - 1) ** 2 + ry * ry) / 0.15);
    p[2]! -= a14 * 0.06 * W * corner;
    p[0]! += a14 * 0.03 * W * Math.sign(rx) * corner;
    const w = head.jawWeight[i]!;
    if (w > 0 && theta > 0) {
      const r = rotateAboutX(p, head.jawPivot, theta);
      for (let k = 0; k < 3; k++) p[k] = p[k]! + w * (r[k]! - p[k]!);
    }
    out[i * 3] = p[0]!; out[i * 3 + 1] = p[1]!; out[i * 3 + 2] = p[2]!;
  }
  // Eyelids: the upper lid margin slides onto the lower one, the fold above follows part-way.
  const close = Math.min(1, Math.max(0, aus.AU45 / 5)) * 0.97;
  for (const [up0, low0, up1] of [[RIGHT_EYE_UPPER0, RIGHT_EYE_LOWER0, RIGHT_EYE_UPPER1], [LEFT_EYE_UPPER0, LEFT_EYE_LOWER0, LEFT_EYE_UPPER1]] as const) {
    for (let k = 1; k <= 7; k++) {
      const u = up0[k]!, l = low0[k]!, fold = up1[k - 1]!;
      const d = [0, 1, 2].map((a) => head.rest[l * 3 + a]! - head.rest[u * 3 + a]!);
      for (let a = 0; a < 3; a++) {
        out[u * 3 + a] = head.rest[u * 3 + a]! + close * d[a]! + (a === 2 ? 0.0015 * close : 0);
        out[fold * 3 + a] = head.rest[fold * 3 + a]! + 0.5 * close * d[a]!;
      }
    }
  }
  return out;
}

export interface InteriorTriangle {
  /** Three head-frame points and their RGB colours. */
  points: [number, number, number][];
  colors: [number, number, number][];
  label: number;
  depthBias: number;
}

/**
 * The mouth interior for deformed positions: a cavity filling the inner-lip hole (dark at its centre) and two
 * rows of teeth (upper fixed to the skull, lower riding on the jaw), set a few millimetres behind the lips.
 */
export function mouthInterior(head: HeadModel, deformed: Float64Array, aus: AuFrame): InteriorTriangle[] {
  const at = (arr: Float64Array, i: number): [number, number, number] => [arr[i * 3]!, arr[i * 3 + 1]!, arr[i * 3 + 2]!];
  const ring = [...LIPS_UPPER_INNER, ...LIPS_LOWER_INNER.slice(1, -1).reverse()].map((i) => at(deformed, i));
  const centre: [number, number, number] = [0, 0, 0];
  for (const p of ring) for (let k = 0; k < 3; k++) centre[k]! += p[k]! / ring.length;
  centre[2] -= 0.025;
  const edge: [number, number, number] = [0.3, 0.08, 0.08], deep: [number, number, number] = [0.08, 0.02, 0.02];
  const tris: InteriorTriangle[] = [];
  for (let k = 0; k < ring.length; k++) {
    tris.push({ points: [ring[k]!, ring[(k + 1) % ring.length]!, centre], colors: [edge, edge, deep], label: LABEL.cavity, depthBias: 0.05 });
  }
  const W = head.mouthWidth, toothH = 0.05 * W, back = 0.005;
  const tooth: [number, number, number] = [0.8, 0.75, 0.64], toothShade: [number, number, number] = [0.48, 0.42, 0.36];
  const theta = jawAngle(aus.AU26);
  const row = (indices: readonly number[], dir: number, onJaw: boolean) => {
    const pts = indices.slice(3, -3).map((i) => {
      let p = at(head.rest, i);
      if (onJaw) p = rotateAboutX(p, head.jawPivot, theta);
      return p;
    });
    for (let k = 0; k + 1 < pts.length; k++) {
      const a = pts[k]!, b = pts[k + 1]!;
      const a0: [number, number, number] = [a[0], a[1] + dir * 0.002, a[2] - back], b0: [number, number, number] = [b[0], b[1] + dir * 0.002, b[2] - back];
      const a1: [number, number, number] = [a[0], a[1] - dir * toothH, a[2] - back - 0.002];
      const b1: [number, number, number] = [b[0], b[1] - dir * toothH, b[2] - back - 0.002];
      tris.push({ points: [a0, b0, b1], colors: [tooth, tooth, toothShade], label: LABEL.teeth, depthBias: 0 });
      tris.push({ points: [a0, b1, a1], colors: [tooth, toothShade, toothShade], label: LABEL.teeth, depthBias: 0 });
    }
  };
  row(LIPS_UPPER_INNER, 1, false);
  row(LIPS_LOWER_INNER, -1, true);
  return tris;
}
