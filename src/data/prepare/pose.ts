/**
 * Head pose from the tracked 468-point face mesh: a rigid (similarity) fit of one fixed head shape to every frame,
 * turned into the camera-to-world matrices of poses.f32, and smoothed over time.
 *
 * 1. Mesh points (x, y, z) in pixels (y down, z negative towards the camera) become camera-frame points with the
 *    NeRF axes: X = x − cx, Y = −(y − cy), Z = −z (x right, y up, z towards the viewer; the camera looks down −z).
 * 2. The head shape S is the clip's own mean mesh: frames are aligned to the first by a similarity transform and
 *    averaged, twice. Its frame: origin at the centroid, x from the right eye's outer corner (mesh 33) to the left
 *    eye's (263), y from the chin (152) up to the top of the forehead (10), made orthogonal to x, z = x × y (out of
 *    the face). Units: metres, taking the outer eye corners to be 0.09 m apart (a typical adult).
 * 3. Each frame: the similarity P ≈ s R S + t minimising the squared distances (Horn's closed form by quaternions),
 *    over the points above the nose tip (forehead, brows, eyes, nose bridge and cheeks), which move with the skull.
 *    Mesh depth is relative, so the fit is weak-perspective: s is pixels per metre at the head's distance, giving
 *    the head centre at T = (t_x / s, t_y / s, −fx / s) in camera coordinates and x_cam = R x_head + T.
 * 4. Camera-to-world, with the head's frame as the world: [Rᵀ | −Rᵀ T] (as AD-NeRF's [Rᵀ | −Rᵀ t]).
 * 5. Smoothing: rotations as unit quaternions (signs aligned frame to frame) and translations are averaged with a
 *    Gaussian window of σ frames (default 2 = 80 ms at 25 fps), then renormalised — tracker jitter is a few pixels
 *    at frame rate, real head motion is slower.
 */

export type Vec3 = [number, number, number];
export type Mat3 = number[];   // 9 values, row-major

/** Eigen decomposition of a symmetric n×n matrix (row-major) by cyclic Jacobi rotations: values and column vectors. */
export function symmetricEigen(matrix: readonly number[], n: number): { values: number[]; vectors: number[] } {
  const a = [...matrix], v: number[] = Array.from({ length: n * n }, (_, i) => (i % (n + 1) === 0 ? 1 : 0));
  for (let sweep = 0; sweep < 50; sweep++) {
    let off = 0;
    for (let p = 0; p < n; p++) for (let q = p + 1; q < n; q++) off += a[p * n + q]! ** 2;
    if (off < 1e-22) break;
    for (let p = 0; p < n; p++) for (let q = p + 1; q < n; q++) {
      const apq = a[p * n + q]!;
      if (Math.abs(apq) < 1e-300) continue;
      const theta = (a[q * n + q]! - a[p * n + p]!) / (2 * apq);
      const t = Math.sign(theta || 1) / (Math.abs(theta) + Math.sqrt(theta * theta + 1));
      const c = 1 / Math.sqrt(t * t + 1), s = t * c;
      for (let k = 0; k < n; k++) {
        const akp = a[k * n + p]!, akq = a[k * n + q]!;
        a[k * n + p] = c * akp - s * akq; a[k * n + q] = s * akp + c * akq;
      }
      for (let k = 0; k < n; k++) {
        const apk = a[p * n + k]!, aqk = a[q * n + k]!;
        a[p * n + k] = c * apk - s * aqk; a[q * n + k] = s * apk + c * aqk;
      }
      for (let k = 0; k < n; k++) {
        const vkp = v[k * n + p]!, vkq = v[k * n + q]!;
        v[k * n + p] = c * vkp - s * vkq; v[k * n + q] = s * vkp + c * vkq;
      }
    }
  }
  return { values: Array.from({ length: n }, (_, i) => a[i * n + i]!), vectors: v };
}

/** Rotation matrix of the unit quaternion (w, x, y, z). */
export function quatToMatrix([w, x, y, z]: readonly number[]): Mat3 {
  return [
    1 - 2 * (y! * y! + z! * z!), 2 * (x! * y! - w! * z!), 2 * (x! * z! + w! * y!),
    2 * (x! * y! + w! * z!), 1 - 2 * (x! * x! + z! * z!), 2 * (y! * z! - w! * x!),
    2 * (x! * z! - w! * y!), 2 * (y! * z! + w! * x!), 1 - 2 * (x! * x! + y! * y!),
  ];
}

/** Unit quaternion (w, x, y, z) of a rotation matrix (Shepperd's method). */
export function matrixToQuat(m: Mat3): number[] {
  const [m00, m01, m02, m10, m11, m12, m20, m21, m22] = m as [number, number, number, number, number, number, number, number, number];
  const trace = m00 + m11 + m22;
  let q: number[];
  if (trace > 0) { const s = 2 * Math.sqrt(trace + 1); q = [s / 4, (m21 - m12) / s, (m02 - m20) / s, (m10 - m01) / s]; }
  else if (m00 > m11 && m00 > m22) { const s = 2 * Math.sqrt(1 + m00 - m11 - m22); q = [(m21 - m12) / s, s / 4, (m01 + m10) / s, (m02 + m20) / s]; }
  else if (m11 > m22) { const s = 2 * Math.sqrt(1 + m11 - m00 - m22); q = [(m02 - m20) / s, (m01 + m10) / s, s / 4, (m12 + m21) / s]; }
  else { const s = 2 * Math.sqrt(1 + m22 - m00 - m11); q = [(m10 - m01) / s, (m02 + m20) / s, (m12 + m21) / s, s / 4]; }
  const norm = Math.hypot(...q);
  return q.map((v) => v / norm);
}

export interface Similarity { R: Mat3; s: number; t: Vec3; rms: number }

/** The similarity b ≈ s R a + t minimising Σ|b − (s R a + t)|² (Horn 1987, quaternion form). */
export function fitSimilarity(a: readonly Vec3[], b: readonly Vec3[]): Similarity {
  const n = a.length;
  const mean = (pts: readonly Vec3[]) => pts.reduce((m, p) => [m[0] + p[0] / n, m[1] + p[1] / n, m[2] + p[2] / n] as Vec3, [0, 0, 0] as Vec3);
  const ma = mean(a), mb = mean(b);
  const M = new Array<number>(9).fill(0);
  let normA = 0;
  for (let i = 0; i < n; i++) {
    const pa = [a[i]![0] - ma[0], a[i]![1] - ma[1], a[i]![2] - ma[2]], pb = [b[i]![0] - mb[0], b[i]![1] - mb[1], b[i]![2] - mb[2]];
    for (let r = 0; r < 3; r++) for (let c = 0; c < 3; c++) M[r * 3 + c]! += pa[r]! * pb[c]!;
    normA += pa[0]! ** 2 + pa[1]! ** 2 + pa[2]! ** 2;
  }
  const [sxx, sxy, sxz, syx, syy, syz, szx, szy, szz] = M as [number, number, number, number, number, number, number, number, number];
  const N = [
    sxx + syy + szz, syz - szy, szx - sxz, sxy - syx,
    syz - szy, sxx - syy - szz, sxy + syx, szx + sxz,
    szx - sxz, sxy + syx, -sxx + syy - szz, syz + szy,
    sxy - syx, szx + sxz, syz + szy, -sxx - syy + szz,
  ];
  const { values, vectors } = symmetricEigen(N, 4);
  const best = values.indexOf(Math.max(...values));
  const R = quatToMatrix([0, 1, 2, 3].map((k) => vectors[k * 4 + best]!));
  let dot = 0;
  for (let i = 0; i < n; i++) {
    const pa = [a[i]![0] - ma[0], a[i]![1] - ma[1], a[i]![2] - ma[2]], pb = [b[i]![0] - mb[0], b[i]![1] - mb[1], b[i]![2] - mb[2]];
    for (let r = 0; r < 3; r++) dot += pb[r]! * (R[r * 3]! * pa[0]! + R[r * 3 + 1]! * pa[1]! + R[r * 3 + 2]! * pa[2]!);
  }
  const s = dot / Math.max(1e-12, normA);
  const apply = (p: Vec3): Vec3 => [0, 1, 2].map((r) => s * (R[r * 3]! * p[0] + R[r * 3 + 1]! * p[1] + R[r * 3 + 2]! * p[2])) as Vec3;
  const ra = apply(ma);
  const t: Vec3 = [mb[0] - ra[0], mb[1] - ra[1], mb[2] - ra[2]];
  let err = 0;
  for (let i = 0; i < n; i++) {
    const p = apply(a[i]!);
    err += (p[0] + t[0] - b[i]![0]) ** 2 + (p[1] + t[1] - b[i]![1]) ** 2 + (p[2] + t[2] - b[i]![2]) ** 2;
  }
  return { R, s, t, rms: Math.sqrt(err / n) };
}

const applySim = ({ R, s, t }: Similarity, p: Vec3): Vec3 =>
  [0, 1, 2].map((r) => s * (R[r * 3]! * p[0] + R[r * 3 + 1]! * p[1] + R[r * 3 + 2]! * p[2]) + t[r]!) as Vec3;

export const EYE_CORNER_DISTANCE_M = 0.09;
const RIGHT_EYE_OUTER = 33, LEFT_EYE_OUTER = 263, CHIN = 152, FOREHEAD = 10;

/** Mesh pixels → camera-frame points (X right, Y up, Z towards the viewer), relative to the principal point. */
export function meshToCamera(mesh: readonly (readonly number[])[], cx: number, cy: number): Vec3[] {
  return mesh.map((p) => [p[0]! - cx, -(p[1]! - cy), -(p[2] ?? 0)] as Vec3);
}

/** The head shape (step 2 of the header) in metres in the head's own frame. */
export function headShape(frames: readonly Vec3[][]): Vec3[] {
  let shape = frames[0]!.map((p) => [...p] as Vec3);
  for (let round = 0; round < 2; round++) {
    const sum = shape.map(() => [0, 0, 0] as Vec3);
    for (const points of frames) {
      const sim = fitSimilarity(points, shape);
      points.forEach((p, i) => { const q = applySim(sim, p); sum[i]![0] += q[0]; sum[i]![1] += q[1]; sum[i]![2] += q[2]; });
    }
    shape = sum.map((p) => p.map((v) => v / frames.length) as Vec3);
  }
  const c = shape.reduce((m, p) => [m[0] + p[0] / shape.length, m[1] + p[1] / shape.length, m[2] + p[2] / shape.length] as Vec3, [0, 0, 0] as Vec3);
  const sub = (a: Vec3, b: Vec3): Vec3 => [a[0] - b[0], a[1] - b[1], a[2] - b[2]];
  const dot = (a: Vec3, b: Vec3) => a[0] * b[0] + a[1] * b[1] + a[2] * b[2];
  const unit = (a: Vec3): Vec3 => { const l = Math.hypot(...a); return [a[0] / l, a[1] / l, a[2] / l]; };
  const eyes = sub(shape[LEFT_EYE_OUTER]!, shape[RIGHT_EYE_OUTER]!);
  const x = unit(eyes);
  const up = sub(shape[FOREHEAD]!, shape[CHIN]!);
  const y = unit(sub(up, x.map((v) => v * dot(up, x)) as Vec3));
  const z: Vec3 = [x[1] * y[2] - x[2] * y[1], x[2] * y[0] - x[0] * y[2], x[0] * y[1] - x[1] * y[0]];
  const metres = EYE_CORNER_DISTANCE_M / Math.hypot(...eyes);
  return shape.map((p) => { const d = sub(p, c); return [dot(d, x) * metres, dot(d, y) * metres, dot(d, z) * metres] as Vec3; });
}

export interface HeadPose { R: Mat3; T: Vec3; rmsPixels: number }

/** Mesh vertex of the nose tip: the fit uses the points above it (the jaw and lips move as the person speaks). */
const NOSE_TIP = 1;

/** Indices of the shape's points that move rigidly with the skull: those higher than the nose tip. */
export function rigidPoints(shape: readonly Vec3[]): number[] {
  const noseY = shape[NOSE_TIP]![1];
  return shape.flatMap((p, i) => (p[1] >= noseY ? [i] : []));
}

/**
 * Per-frame head-to-camera pose (x_cam = R x_head + T, metres) by the weak-perspective fit of step 3, on the
 * points above the nose tip only (`rigidPoints`): fitting the moving jaw too tilts the head as the mouth opens.
 */
export function fitHeadPoses(frames: readonly Vec3[][], shape: readonly Vec3[], focal: number): HeadPose[] {
  const rigid = rigidPoints(shape), model = rigid.map((i) => shape[i]!);
  return frames.map((all) => {
    const points = rigid.map((i) => all[i]!);
    const sim = fitSimilarity(model, points);
    return { R: sim.R, T: [sim.t[0] / sim.s, sim.t[1] / sim.s, -focal / sim.s], rmsPixels: sim.rms };
  });
}

/**
 * Each frame's mesh taken back into the head frame (metres) by the inverse of its rigid fit: the face as seen from
 * straight ahead, whatever the head pose, for measuring expressions (AUs) free of foreshortening.
 */
export function frontalMeshes(frames: readonly Vec3[][], shape: readonly Vec3[]): Vec3[][] {
  const rigid = rigidPoints(shape), model = rigid.map((i) => shape[i]!);
  return frames.map((all) => {
    const { R, s, t } = fitSimilarity(model, rigid.map((i) => all[i]!));
    return all.map((p) => {
      const d = [p[0] - t[0], p[1] - t[1], p[2] - t[2]];
      return [0, 1, 2].map((c) => (R[c]! * d[0]! + R[3 + c]! * d[1]! + R[6 + c]! * d[2]!) / s) as Vec3;
    });
  });
}

/** Gaussian smoothing over time of rotations (as sign-aligned quaternions) and translations; σ in frames. */
export function smoothPoses(poses: readonly HeadPose[], sigma: number): HeadPose[] {
  if (sigma <= 0) return poses.map((p) => ({ ...p }));
  const quats = poses.map((p) => matrixToQuat(p.R));
  for (let i = 1; i < quats.length; i++) {
    const d = quats[i]!.reduce((acc, v, k) => acc + v * quats[i - 1]![k]!, 0);
    if (d < 0) quats[i] = quats[i]!.map((v) => -v);
  }
  const radius = Math.ceil(3 * sigma);
  return poses.map((pose, i) => {
    const q = [0, 0, 0, 0], T: Vec3 = [0, 0, 0];
    let total = 0;
    for (let j = Math.max(0, i - radius); j <= Math.min(poses.length - 1, i + radius); j++) {
      const w = Math.exp(-((j - i) ** 2) / (2 * sigma * sigma));
      total += w;
      for (let k = 0; k < 4; k++) q[k]! += w * quats[j]![k]!;
      for (let k = 0; k < 3; k++) T[k]! += w * poses[j]!.T[k]!;
    }
    const norm = Math.hypot(...q);
    return { R: quatToMatrix(q.map((v) => v / norm)), T: T.map((v) => v / total) as Vec3, rmsPixels: pose.rmsPixels };
  });
}

/** Camera-to-world [Rᵀ | −Rᵀ T; 0 0 0 1], row-major, 16 values. */
export function cameraToWorld({ R, T }: HeadPose): number[] {
  const Rt = [R[0]!, R[3]!, R[6]!, R[1]!, R[4]!, R[7]!, R[2]!, R[5]!, R[8]!];
  const c = [0, 1, 2].map((r) => -(Rt[r * 3]! * T[0] + Rt[r * 3 + 1]! * T[1] + Rt[r * 3 + 2]! * T[2]));
  return [Rt[0]!, Rt[1]!, Rt[2]!, c[0]!, Rt[3]!, Rt[4]!, Rt[5]!, c[1]!, Rt[6]!, Rt[7]!, Rt[8]!, c[2]!, 0, 0, 0, 1];
}
