/**
 * Camera rays for chosen pixels, in the convention of AD-NeRF / NeRF's `get_rays` (OpenGL camera: x right, y up,
 * looking down −z):
 *   dir_camera = ((u + pixel_offset − cx) / fx, −(v + pixel_offset − cy) / fy, −1)
 *   dir_world  = R · dir_camera   (R = c2w[:3, :3], not normalised: its z-component is the depth unit)
 *   origin     = c2w[:3, 3]
 * with u the column and v the row of the pixel. AD-NeRF's `transforms_*.json` give `transform_matrix` (4×4
 * camera-to-world in this same convention), `focal_len` (fx = fy) and `cx`, `cy`; it uses integer pixel
 * coordinates, i.e. pixel_offset = 0. nerfad uses pixel centres (pixel_offset = 0.5) unless told otherwise.
 *
 * Thread mapping: one thread per ray. Layout: pixel [R] (u32 flat index v·width + u), frame [R] (u32 index into
 * c2w), c2w [F, 3, 4] row-major; outputs origin [R, 3], direction [R, 3], dir_norm [R] = |direction|.
 */
import { defineKernel } from '../runtime/kernel.ts';

const WORKGROUP = 64;

export const generateRays = defineKernel({
  name: 'generate_rays',
  bindings: [
    { name: 'pixel', access: 'read' },
    { name: 'frame', access: 'read' },
    { name: 'c2w', access: 'read' },
    { name: 'origin', access: 'rw' },
    { name: 'direction', access: 'rw' },
    { name: 'dir_norm', access: 'rw' },
  ],
  params: [
    { name: 'rays', type: 'u32' },
    { name: 'width', type: 'u32' },
    { name: 'fx', type: 'f32' },
    { name: 'fy', type: 'f32' },
    { name: 'cx', type: 'f32' },
    { name: 'cy', type: 'f32' },
    { name: 'pixel_offset', type: 'f32' },
  ],
  workgroupSize: WORKGROUP,
  wgsl: () => /* wgsl */ `
// generate_rays: pinhole rays through pixel centres, rotated and placed by each ray's camera-to-world matrix
struct Params { rays: u32, width: u32, fx: f32, fy: f32, cx: f32, cy: f32, pixel_offset: f32 }
@group(0) @binding(0) var<storage, read> pixel: array<u32>;
@group(0) @binding(1) var<storage, read> frame: array<u32>;
@group(0) @binding(2) var<storage, read> c2w: array<f32>;
@group(0) @binding(3) var<storage, read_write> origin: array<f32>;
@group(0) @binding(4) var<storage, read_write> direction: array<f32>;
@group(0) @binding(5) var<storage, read_write> dir_norm: array<f32>;
@group(0) @binding(6) var<uniform> p: Params;

@compute @workgroup_size(${WORKGROUP})
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) groups: vec3u) {
  let r = gid.x + gid.y * groups.x * ${WORKGROUP}u;
  if (r >= p.rays) { return; }
  let u = f32(pixel[r] % p.width) + p.pixel_offset;
  let v = f32(pixel[r] / p.width) + p.pixel_offset;
  let camera_dir = vec3f((u - p.cx) / p.fx, -(v - p.cy) / p.fy, -1.0);
  let m = frame[r] * 12u;
  let world_dir = vec3f(
    dot(vec3f(c2w[m], c2w[m + 1u], c2w[m + 2u]), camera_dir),
    dot(vec3f(c2w[m + 4u], c2w[m + 5u], c2w[m + 6u]), camera_dir),
    dot(vec3f(c2w[m + 8u], c2w[m + 9u], c2w[m + 10u]), camera_dir));
  origin[r * 3u] = c2w[m + 3u];
  origin[r * 3u + 1u] = c2w[m + 7u];
  origin[r * 3u + 2u] = c2w[m + 11u];
  direction[r * 3u] = world_dir.x;
  direction[r * 3u + 1u] = world_dir.y;
  direction[r * 3u + 2u] = world_dir.z;
  dir_norm[r] = length(world_dir);
}
`,
});

export interface Intrinsics {
  fx: number;
  fy: number;
  cx: number;
  cy: number;
}

/** float64 reference: returns origin [R,3], direction [R,3], dirNorm [R]. */
export function generateRaysReference(
  pixel: ArrayLike<number>,
  frame: ArrayLike<number>,
  c2w: Float64Array,
  width: number,
  k: Intrinsics,
  pixelOffset = 0.5,
): { origin: Float64Array; direction: Float64Array; dirNorm: Float64Array } {
  const rays = pixel.length;
  const origin = new Float64Array(rays * 3);
  const direction = new Float64Array(rays * 3);
  const dirNorm = new Float64Array(rays);
  for (let r = 0; r < rays; r++) {
    const u = (pixel[r] % width) + pixelOffset;
    const v = Math.floor(pixel[r] / width) + pixelOffset;
    const d = [(u - k.cx) / k.fx, -(v - k.cy) / k.fy, -1];
    const m = frame[r] * 12;
    let norm = 0;
    for (let row = 0; row < 3; row++) {
      const w = c2w[m + row * 4] * d[0] + c2w[m + row * 4 + 1] * d[1] + c2w[m + row * 4 + 2] * d[2];
      direction[r * 3 + row] = w;
      origin[r * 3 + row] = c2w[m + row * 4 + 3];
      norm += w * w;
    }
    dirNorm[r] = Math.sqrt(norm);
  }
  return { origin, direction, dirNorm };
}
