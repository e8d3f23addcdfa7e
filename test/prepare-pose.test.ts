/**
 * Head pose from a face mesh (src/data/prepare/pose.ts): a known head shape, rotated and placed in front of a
 * pinhole camera, projected to "mesh" pixels the way Human reports them (x, y in pixels, z relative depth in pixel
 * units, negative towards the camera); the fit must give back the rotation and the position, in the NeRF
 * camera-to-world convention, and the contact sheet's projection must land on the projected head centre.
 */
import { describe, expect, it } from 'vitest';
import { cameraToWorld, fitHeadPoses, fitSimilarity, headShape, matrixToQuat, meshToCamera, quatToMatrix, smoothPoses, symmetricEigen, type Mat3, type Vec3 } from '../src/data/prepare/pose.ts';
import { Rng } from '../src/tensor/random.ts';

const rotation = (yaw: number, pitch: number, roll: number): Mat3 => {
  const [cy, sy, cp, sp, cr, sr] = [Math.cos(yaw), Math.sin(yaw), Math.cos(pitch), Math.sin(pitch), Math.cos(roll), Math.sin(roll)];
  const Ry = [cy, 0, sy, 0, 1, 0, -sy, 0, cy], Rx = [1, 0, 0, 0, cp, -sp, 0, sp, cp], Rz = [cr, -sr, 0, sr, cr, 0, 0, 0, 1];
  const mul = (a: number[], b: number[]) => Array.from({ length: 9 }, (_, i) => [0, 1, 2].reduce((s, k) => s + a[Math.floor(i / 3) * 3 + k]! * b[k * 3 + (i % 3)]!, 0));
  return mul(Ry, mul(Rx, Rz));
};
const apply = (R: Mat3, p: Vec3, T: Vec3): Vec3 => [0, 1, 2].map((r) => R[r * 3]! * p[0] + R[r * 3 + 1]! * p[1] + R[r * 3 + 2]! * p[2] + T[r]!) as Vec3;

/** A face-like shape in metres: 468 points on an ellipsoid cap facing +z, eyes' outer corners at index 33/263. */
function shape(rng: Rng): Vec3[] {
  const pts = Array.from({ length: 468 }, () => {
    const u = rng.range(-1.2, 1.2), v = rng.range(-1.4, 1.4);
    return [0.07 * Math.sin(u), 0.09 * Math.sin(v), 0.06 * Math.cos(u) * Math.cos(v)] as Vec3;
  });
  pts[33] = [-0.045, 0.02, 0.03]; pts[263] = [0.045, 0.02, 0.03]; pts[152] = [0, -0.09, 0.03]; pts[10] = [0, 0.09, 0.03];
  return pts;
}

function project(points: Vec3[], R: Mat3, T: Vec3, f: number, cx: number, cy: number): number[][] {
  return points.map((p) => {
    const c = apply(R, p, T);
    // z: depth relative to the head centre in pixel units, negative towards the camera (Human's convention)
    return [cx + (f * c[0]) / -c[2], cy - (f * c[1]) / -c[2], (-(c[2] - T[2]) * f) / -T[2]];
  });
}

describe('head pose', () => {
  it('symmetricEigen and the quaternion round trip', () => {
    const { values, vectors } = symmetricEigen([2, 1, 0, 1, 2, 0, 0, 0, 5], 3);
    expect([...values].sort((a, b) => a - b).map((v) => +v.toFixed(9))).toEqual([1, 3, 5]);
    const i = values.findIndex((v) => Math.abs(v - 3) < 1e-9);
    expect(Math.abs(vectors[0 * 3 + i]!)).toBeCloseTo(Math.SQRT1_2, 9);
    const R = rotation(0.3, -0.2, 0.1);
    quatToMatrix(matrixToQuat(R)).forEach((v, k) => expect(v).toBeCloseTo(R[k]!, 12));
  });

  it('fitSimilarity recovers an exact similarity', () => {
    const rng = new Rng(3), a = shape(rng), R = rotation(-0.4, 0.25, 0.3);
    const b = a.map((p) => apply(R, p.map((v) => 2.5 * v) as Vec3, [1, -2, 3]));
    const sim = fitSimilarity(a, b);
    expect(sim.s).toBeCloseTo(2.5, 9);
    sim.R.forEach((v, k) => expect(v).toBeCloseTo(R[k]!, 9));
    expect(sim.rms).toBeLessThan(1e-9);
  });

  it('recovers rotation and position from a projected mesh, as NeRF camera-to-world', () => {
    const rng = new Rng(7), truth = shape(rng), f = 500, cx = 128, cy = 120;
    const cases = [[0, 0, 0], [0.3, 0, 0], [0, 0.2, 0], [-0.2, 0.1, 0.15]].map(([yaw, pitch, roll], k) =>
      ({ R: rotation(yaw!, pitch!, roll!), T: [0.02 * k, -0.01, -0.6] as Vec3 }));
    const meshes = cases.map(({ R, T }) => meshToCamera(project(truth, R, T, f, cx, cy), cx, cy));
    const head = headShape(meshes);
    const fitted = fitHeadPoses(meshes, head, f);
    // The head frame is the clip's own (frame 0 is frontal here, so it matches the truth's up to the shape's axes).
    const R0 = fitted[0]!.R;
    cases.forEach(({ R, T }, k) => {
      // relative rotation to frame 0 matches the truth's
      const rel = (A: Mat3, B: Mat3) => Array.from({ length: 9 }, (_, i) => [0, 1, 2].reduce((s, j) => s + A[Math.floor(i / 3) * 3 + j]! * B[(i % 3) * 3 + j]!, 0));
      const want = rel(R, cases[0]!.R), got = rel(fitted[k]!.R, R0);
      got.forEach((v, i) => expect(v).toBeCloseTo(want[i]!, 1));
      // head centre position: distance within 10 % (weak perspective: the eye corners, which set the metric scale,
      // sit 3 cm in front of the centroid, so they look ~5 % larger than the shape's mean depth), lateral within 5 mm
      expect(fitted[k]!.T[2] / T[2]).toBeGreaterThan(0.9); expect(fitted[k]!.T[2] / T[2]).toBeLessThan(1.1);
      // (the head frame's origin is the shape's centroid, not the truth's origin)
      const centroid = truth.reduce((m, p) => [m[0] + p[0] / 468, m[1] + p[1] / 468, m[2] + p[2] / 468] as Vec3, [0, 0, 0] as Vec3);
      const centre = apply(R, centroid, T);
      expect(Math.abs(fitted[k]!.T[0] - centre[0])).toBeLessThan(0.005);
      expect(Math.abs(fitted[k]!.T[1] - centre[1])).toBeLessThan(0.005);
      // camera-to-world: the camera sits in front of the face (+z in the head frame) at the head's distance
      const c2w = cameraToWorld(fitted[k]!);
      expect(Math.hypot(c2w[3]!, c2w[7]!, c2w[11]!)).toBeCloseTo(Math.hypot(...fitted[k]!.T), 9);
      if (k === 0) expect(c2w[11]!).toBeGreaterThan(0.55);
    });
  });

  it('smoothing removes frame-to-frame jitter and keeps a slow turn', () => {
    const rng = new Rng(11);
    const poses = Array.from({ length: 60 }, (_, f) => ({ R: rotation(0.01 * f + rng.range(-0.02, 0.02), rng.range(-0.02, 0.02), 0), T: [0, 0, -0.6] as Vec3, rmsPixels: 0 }));
    const yawOf = (R: Mat3) => Math.atan2(R[2]!, R[8]!);
    const jitter = (ps: typeof poses) => ps.slice(1).reduce((s, p, i) => s + Math.abs(yawOf(p.R) - yawOf(ps[i]!.R) - 0.01), 0) / (ps.length - 1);
    const smoothed = smoothPoses(poses, 2);
    expect(jitter(smoothed)).toBeLessThan(jitter(poses) / 3);
    expect(yawOf(smoothed[30]!.R)).toBeCloseTo(0.3, 1);
  });
});
