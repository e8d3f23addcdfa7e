/**
 * Ray marching through the occupancy grid with sample compaction (instant-ngp's generate_training_samples,
 * torch-ngp's march_rays_train), and the two small kernels that keep the sample count on the GPU.
 * The float64 reference: march.ref.ts.
 *
 * march_rays — thread per ray. The ray (origin o, direction d, unit d̂ = d/|d|) is clipped to the box
 * [−bound, bound]³ and to [near, far] (z units: a point is o + z·d, as in stratified sampling), giving a range
 * [t0, t1) of distance t = z·|d|. Candidate samples sit on the lattice t_k = t0 + (k + u)·dt (u: one random offset
 * per ray in training, 0.5 in evaluation); the walk starts at k = start_step[ray] (0 in training; rendering resumes
 * rays that are still transparent, instant-ngp's iterative inference march) and writes where it stopped to
 * end_step[ray]: the next lattice index, or 0xFFFFFFFF when the ray left its range (nothing more to march). A
 * candidate in an occupied cell is emitted and the walk moves one dt; a candidate in an empty cell jumps whole dt
 * steps to the first lattice point past the cell's exit (so emitted samples always lie on the ray's lattice).
 * At most `max_samples` are emitted. The walk runs once, writing each
 * sample's t to the ray's row of `scratch_t`; one atomicAdd on `counter` then allocates the ray's span of the packed
 * arrays and the row is copied there (instant-ngp and torch-ngp walk twice instead, counting and then writing:
 * here the empty-space steps are most of the march's cost). A ray whose run would overflow `capacity` gets no
 * samples (instant-ngp does the same); the compositor then gives it the background.
 *   runs [R, 2] u32: (offset, count) into the packed sample arrays (torch-ngp's `rays` layout)
 *   sample_ray [capacity] u32, sample_z [capacity] f32 (depth, z units), sample_delta [capacity] f32 (dt, world units)
 *   counter [1] u32: samples asked for (may exceed capacity; consumers clamp)
 *   start_step [R] u32 (read), end_step [R] u32 (written), scratch_t [R, max_samples] f32 (the walk's distances)
 *
 * sample_dispatch_args — one thread: count = min(counter, capacity) → args [3] u32 = the workgroup grid covering
 * `count` threads (x ≤ 65535, folded into y), and count_out [1] u32, for dispatchWorkgroupsIndirect of per-sample
 * kernels: no readback.
 *
 * sample_positions — thread per sample s < count (dispatched indirectly): points[s] = o + z·d, dirs[s] = d̂ of its
 * ray. Rows past the count are never written (the caller zeroes them, so the field sees finite padding); rows a
 * ray reserved but could not fill (capacity overflow) read the caller's zeroed sample_ray and stay finite.
 */
import { defineKernel } from '../runtime/kernel.ts';
import { HASH_WGSL } from './sampling.ts';

const WORKGROUP = 64;

export const marchRays = defineKernel({
  name: 'march_rays',
  bindings: [
    { name: 'origin', access: 'read' },
    { name: 'direction', access: 'read' },
    { name: 'bitfield', access: 'read' },
    { name: 'near', access: 'read' },
    { name: 'far', access: 'read' },
    { name: 'start_step', access: 'read' },
    { name: 'counter', access: 'rw' },
    { name: 'runs', access: 'rw' },
    { name: 'sample_ray', access: 'rw' },
    { name: 'sample_z', access: 'rw' },
    { name: 'sample_delta', access: 'rw' },
    { name: 'end_step', access: 'rw' },
    { name: 'scratch_t', access: 'rw' },
  ],
  params: [
    { name: 'rays', type: 'u32' },
    { name: 'capacity', type: 'u32' },
    { name: 'resolution', type: 'u32' },
    { name: 'bound', type: 'f32' },
    { name: 'dt', type: 'f32' },
    { name: 'max_samples', type: 'u32' },
    { name: 'seed', type: 'u32' },
    { name: 'jitter', type: 'u32' },
  ],
  workgroupSize: WORKGROUP,
  wgsl: () => /* wgsl */ `
// march_rays: per ray, emit lattice samples in occupied cells into a packed buffer (atomic allocation)
struct Params { rays: u32, capacity: u32, resolution: u32, bound: f32, dt: f32, max_samples: u32, seed: u32, jitter: u32 }
@group(0) @binding(0) var<storage, read> origin: array<f32>;
@group(0) @binding(1) var<storage, read> direction: array<f32>;
@group(0) @binding(2) var<storage, read> bitfield: array<u32>;
@group(0) @binding(3) var<storage, read> near: array<f32>;
@group(0) @binding(4) var<storage, read> far: array<f32>;
@group(0) @binding(5) var<storage, read> start_step: array<u32>;
@group(0) @binding(6) var<storage, read_write> counter: array<atomic<u32>>;
@group(0) @binding(7) var<storage, read_write> runs: array<u32>;
@group(0) @binding(8) var<storage, read_write> sample_ray: array<u32>;
@group(0) @binding(9) var<storage, read_write> sample_z: array<f32>;
@group(0) @binding(10) var<storage, read_write> sample_delta: array<f32>;
@group(0) @binding(11) var<storage, read_write> end_step: array<u32>;
@group(0) @binding(12) var<storage, read_write> scratch_t: array<f32>;
@group(0) @binding(13) var<uniform> p: Params;
${HASH_WGSL}

struct Ray { o: vec3f, unit: vec3f, norm: f32, t0: f32, t1: f32 }

fn cell_of(point: vec3f) -> vec3i {
  let size = 2.0 * p.bound / f32(p.resolution);
  return clamp(vec3i(floor((point + vec3f(p.bound)) / size)), vec3i(0), vec3i(i32(p.resolution) - 1));
}

fn occupied(cell: vec3i) -> bool {
  let c = u32(cell.x) + p.resolution * (u32(cell.y) + p.resolution * u32(cell.z));
  return ((bitfield[c >> 5u] >> (c & 31u)) & 1u) != 0u;
}

// Distance along the ray to where it leaves the cell along one axis (3.4e38 when the ray runs parallel to it).
fn axis_exit(o: f32, unit: f32, cell: i32, size: f32) -> f32 {
  if (unit == 0.0) { return 3.4e38; }
  let plane = select(f32(cell), f32(cell + 1), unit > 0.0) * size - p.bound;
  return (plane - o) / unit;
}

// Distance along the ray to where it leaves the cell: the nearest exit plane over the three axes (written out per
// axis: a dynamically indexed vector would be spilled to memory on lavapipe, per lane, every step).
fn cell_exit(ray: Ray, cell: vec3i, t: f32) -> f32 {
  let size = 2.0 * p.bound / f32(p.resolution);
  return min(axis_exit(ray.o.x, ray.unit.x, cell.x, size), min(axis_exit(ray.o.y, ray.unit.y, cell.y, size), axis_exit(ray.o.z, ray.unit.z, cell.z, size)));
}

const DONE: u32 = 0xffffffffu;
struct Walked { count: u32, next: u32 }

// Walks the ray's lattice from step k0, writing each sample's distance t to the ray's scratch row. Returns the
// number of samples and the next lattice step (DONE past the ray's range).
fn walk(index: u32, ray: Ray, u: f32, k0: u32) -> Walked {
  var n = 0u;
  var k = f32(k0);
  let row = index * p.max_samples;
  loop {
    let t = ray.t0 + (k + u) * p.dt;
    if (t >= ray.t1) { return Walked(n, DONE); }
    if (n >= p.max_samples) { break; }
    let cell = cell_of(ray.o + t * ray.unit);
    if (occupied(cell)) {
      scratch_t[row + n] = t;
      n += 1u;
      k += 1.0;
    } else {
      // Whole steps to the first lattice point past the exit (the 1e-4 slack lands just inside on rounding
      // ties, which costs one more jump, instead of skipping a point in the next cell).
      k += max(1.0, ceil((cell_exit(ray, cell, t) - t) / p.dt - 1e-4));
    }
  }
  return Walked(n, u32(k));
}

@compute @workgroup_size(${WORKGROUP})
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) groups: vec3u) {
  let index = gid.x + gid.y * groups.x * ${WORKGROUP}u;
  if (index >= p.rays) { return; }
  let o = vec3f(origin[index * 3u], origin[index * 3u + 1u], origin[index * 3u + 2u]);
  let d = vec3f(direction[index * 3u], direction[index * 3u + 1u], direction[index * 3u + 2u]);
  let norm = length(d);
  let unit = d / norm;
  // Slab test against the box; axes the ray runs parallel to constrain nothing unless it lies outside them.
  var t0 = near[index] * norm;
  var t1 = far[index] * norm;
  for (var a = 0; a < 3; a++) {
    if (unit[a] != 0.0) {
      let ta = (-p.bound - o[a]) / unit[a];
      let tb = (p.bound - o[a]) / unit[a];
      t0 = max(t0, min(ta, tb));
      t1 = min(t1, max(ta, tb));
    } else if (o[a] < -p.bound || o[a] >= p.bound) {
      t1 = -1.0;
    }
  }
  runs[index * 2u] = 0u;
  runs[index * 2u + 1u] = 0u;
  end_step[index] = DONE;
  if (t0 >= t1 || start_step[index] == DONE) { return; }
  let ray = Ray(o, unit, norm, t0, t1);
  let u = select(0.5, random01(p.seed, index, 0u), p.jitter != 0u);
  let walked = walk(index, ray, u, start_step[index]);
  let count = walked.count;
  if (count == 0u) { return; }
  let base = atomicAdd(&counter[0], count);
  if (base + count > p.capacity) { return; }
  // Copied from the scratch row rather than walked again: the walk's empty-space steps are the march's cost.
  let row = index * p.max_samples;
  for (var i = 0u; i < count; i++) {
    sample_ray[base + i] = index;
    sample_z[base + i] = scratch_t[row + i] / norm;
    sample_delta[base + i] = p.dt;
  }
  runs[index * 2u] = base;
  runs[index * 2u + 1u] = count;
  end_step[index] = walked.next;
}
`,
});

export const sampleDispatchArgs = defineKernel({
  name: 'sample_dispatch_args',
  bindings: [
    { name: 'counter', access: 'read' },
    { name: 'args', access: 'rw' },
    { name: 'count_out', access: 'rw' },
  ],
  params: [
    { name: 'capacity', type: 'u32' },
    { name: 'workgroup_size', type: 'u32' },
  ],
  workgroupSize: 1,
  wgsl: () => /* wgsl */ `
// sample_dispatch_args: count = min(counter, capacity) → indirect workgroup grid (x ≤ 65535, folded into y)
struct Params { capacity: u32, workgroup_size: u32 }
@group(0) @binding(0) var<storage, read> counter: array<u32>;
@group(0) @binding(1) var<storage, read_write> args: array<u32>;
@group(0) @binding(2) var<storage, read_write> count_out: array<u32>;
@group(0) @binding(3) var<uniform> p: Params;

@compute @workgroup_size(1)
fn main() {
  let count = min(counter[0], p.capacity);
  let groups = (count + p.workgroup_size - 1u) / p.workgroup_size;
  // As Runtime.grid1D: y = ⌈groups / 65535⌉ rows of x = ⌈groups / y⌉ (x = 0 dispatches nothing).
  let y = max(1u, (groups + 65534u) / 65535u);
  args[0] = (groups + y - 1u) / y;
  args[1] = y;
  args[2] = 1u;
  count_out[0] = count;
}
`,
});

export const SAMPLE_POSITIONS_WORKGROUP = WORKGROUP;

export const samplePositions = defineKernel({
  name: 'sample_positions',
  bindings: [
    { name: 'origin', access: 'read' },
    { name: 'direction', access: 'read' },
    { name: 'sample_ray', access: 'read' },
    { name: 'sample_z', access: 'read' },
    { name: 'count', access: 'read' },
    { name: 'points', access: 'rw' },
    { name: 'dirs', access: 'rw' },
  ],
  params: [{ name: 'capacity', type: 'u32' }],
  workgroupSize: WORKGROUP,
  wgsl: () => /* wgsl */ `
// sample_positions: points[s] = o + z·d, dirs[s] = d / |d| for s < count (count read on the GPU)
struct Params { capacity: u32 }
@group(0) @binding(0) var<storage, read> origin: array<f32>;
@group(0) @binding(1) var<storage, read> direction: array<f32>;
@group(0) @binding(2) var<storage, read> sample_ray: array<u32>;
@group(0) @binding(3) var<storage, read> sample_z: array<f32>;
@group(0) @binding(4) var<storage, read> count: array<u32>;
@group(0) @binding(5) var<storage, read_write> points: array<f32>;
@group(0) @binding(6) var<storage, read_write> dirs: array<f32>;
@group(0) @binding(7) var<uniform> p: Params;

@compute @workgroup_size(${WORKGROUP})
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) groups: vec3u) {
  let s = gid.x + gid.y * groups.x * ${WORKGROUP}u;
  if (s >= min(count[0], p.capacity)) { return; }
  let r = sample_ray[s];
  let o = vec3f(origin[r * 3u], origin[r * 3u + 1u], origin[r * 3u + 2u]);
  let d = vec3f(direction[r * 3u], direction[r * 3u + 1u], direction[r * 3u + 2u]);
  let point = o + sample_z[s] * d;
  // Rows reserved by a ray that overflowed are not part of any run: zero direction there, never 0/0.
  let norm = length(d);
  let unit = select(vec3f(0.0), d / norm, norm > 0.0);
  for (var a = 0u; a < 3u; a++) {
    points[s * 3u + a] = point[a];
    dirs[s * 3u + a] = unit[a];
  }
}
`,
});
