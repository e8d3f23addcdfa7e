/**
 * float64 reference of occupancy-grid ray marching (march.ts): per ray, the samples the marcher emits, as a list.
 * The lattice, the box/near/far clipping, the skip of empty cells and the max-samples cap read like the kernel's
 * header; the packing (offsets from an atomic counter) is not modelled: compare rays by their (offset, count) runs.
 */
import { cellIndexRef, isOccupiedRef } from './occupancy.ref.ts';
import { random01 } from './sampling.ts';

export interface MarchSettings {
  resolution: number;
  bound: number;
  dt: number;
  maxSamples: number;
  seed: number;
  jitter: boolean;
}

export interface RaySamples {
  /** Depths in z units (point = o + z·d). */
  z: number[];
  /** World-space interval of each sample (dt). */
  delta: number[];
  /** The next lattice step to resume from, or DONE when the ray left its range. */
  next: number;
}

export const DONE = 0xffffffff;

export function marchRayRef(o: ArrayLike<number>, d: ArrayLike<number>, near: number, far: number, ray: number, bitfield: ArrayLike<number>, s: MarchSettings, startStep = 0): RaySamples {
  const norm = Math.hypot(d[0], d[1], d[2]);
  const unit = [d[0] / norm, d[1] / norm, d[2] / norm];
  let t0 = near * norm;
  let t1 = far * norm;
  for (let a = 0; a < 3; a++) {
    if (unit[a] !== 0) {
      const ta = (-s.bound - o[a]) / unit[a];
      const tb = (s.bound - o[a]) / unit[a];
      t0 = Math.max(t0, Math.min(ta, tb));
      t1 = Math.min(t1, Math.max(ta, tb));
    } else if (o[a] < -s.bound || o[a] >= s.bound) {
      t1 = -1;
    }
  }
  const out: RaySamples = { z: [], delta: [], next: DONE };
  if (t0 >= t1 || startStep === DONE) return out;
  const u = s.jitter ? random01(s.seed, ray, 0) : 0.5;
  const size = (2 * s.bound) / s.resolution;
  for (let k = startStep; ; ) {
    const t = t0 + (k + u) * s.dt;
    if (t >= t1) return out;
    if (out.z.length >= s.maxSamples) {
      out.next = k;
      return out;
    }
    const point = [0, 1, 2].map((a) => o[a] + t * unit[a]);
    // Points on the box's upper faces belong to the last cell (the kernel clamps).
    const cell = [0, 1, 2].map((a) => Math.min(s.resolution - 1, Math.max(0, Math.floor((point[a] + s.bound) / size))));
    const index = cell[0] + s.resolution * (cell[1] + s.resolution * cell[2]);
    if (isOccupiedRef(bitfield, index)) {
      out.z.push(t / norm);
      out.delta.push(s.dt);
      k += 1;
    } else {
      let exit = Infinity;
      for (let a = 0; a < 3; a++) {
        if (unit[a] === 0) continue;
        const plane = (unit[a] > 0 ? cell[a] + 1 : cell[a]) * size - s.bound;
        exit = Math.min(exit, (plane - o[a]) / unit[a]);
      }
      k += Math.max(1, Math.ceil((exit - t) / s.dt - 1e-4));
    }
  }
}

export { cellIndexRef };
