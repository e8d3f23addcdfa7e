/**
 * float64 reference of the occupancy grid (see occupancy.ts for the layout): cell points, the EMA-max update and
 * the packed bitfield, as plain loops over cells.
 */
import { densityRef, type DensityActivation } from './composite.ref.ts';
import { random01 } from './sampling.ts';

/** Linear index of the cell holding p, or −1 when p is outside [−bound, bound)³. */
export function cellIndexRef(p: ArrayLike<number>, resolution: number, bound: number): number {
  const size = (2 * bound) / resolution;
  const xyz = [0, 1, 2].map((a) => Math.floor((p[a] + bound) / size));
  if (xyz.some((v) => v < 0 || v >= resolution)) return -1;
  return xyz[0] + resolution * (xyz[1] + resolution * xyz[2]);
}

export function isOccupiedRef(bitfield: ArrayLike<number>, cell: number): boolean {
  return ((bitfield[cell >>> 5] >>> (cell & 31)) & 1) === 1;
}

/** Cells an update touches: c = phase + k·stride for k < slots. */
export function updateSlots(cells: number, stride: number, phase: number): number {
  return Math.max(0, Math.ceil((cells - phase) / stride));
}

export function occupancyCellPointsRef(resolution: number, bound: number, stride: number, phase: number, seed: number, jitter: boolean): Float64Array {
  const slots = updateSlots(resolution ** 3, stride, phase);
  const points = new Float64Array(slots * 3);
  const size = (2 * bound) / resolution;
  for (let k = 0; k < slots; k++) {
    const c = phase + k * stride;
    const cell = [c % resolution, Math.floor(c / resolution) % resolution, Math.floor(c / resolution ** 2)];
    for (let a = 0; a < 3; a++) {
      const u = jitter ? random01(seed, c, a) : 0.5;
      points[k * 3 + a] = -bound + (cell[a] + u) * size;
    }
  }
  return points;
}

export function occupancyUpdateRef(grid: Float64Array, sigmaRaw: ArrayLike<number>, stride: number, phase: number, decay: number, activation: DensityActivation, scale = 1): Float64Array {
  const next = Float64Array.from(grid);
  const slots = updateSlots(grid.length, stride, phase);
  for (let k = 0; k < slots; k++) {
    const c = phase + k * stride;
    next[c] = Math.max(grid[c] * decay, scale * densityRef(sigmaRaw[k], activation));
  }
  return next;
}

/** Bit c of the result is set when grid[c] > min(mean(grid), threshold). */
export function occupancyPackRef(grid: ArrayLike<number>, threshold: number): Uint32Array {
  let sum = 0;
  for (let c = 0; c < grid.length; c++) sum += grid[c];
  const cutoff = Math.min(sum / grid.length, threshold);
  const bits = new Uint32Array(Math.ceil(grid.length / 32));
  for (let c = 0; c < grid.length; c++) if (grid[c] > cutoff) bits[c >>> 5] |= 1 << (c & 31);
  return bits;
}
