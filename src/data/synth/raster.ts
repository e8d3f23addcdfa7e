/**
 * A small CPU triangle rasteriser in float64: perspective-correct barycentric interpolation, a depth buffer, and
 * supersampling (render at ss× the size, then box-filter down) for anti-aliasing. Each triangle either samples a
 * texture (the portrait) at interpolated texture coordinates or takes interpolated vertex colours; each vertex also
 * carries an alpha. Sample centres sit at (i + 0.5, j + 0.5) in the supersampled grid.
 */
import { sampleBilinear, type RgbImage } from './image.ts';

export interface RasterTarget {
  width: number;
  height: number;
  /** Camera-space depth (−Z, metres) of the nearest surface per sample; +Infinity where empty. */
  depth: Float64Array;
  color: Float64Array;
  alpha: Float64Array;
  /** A per-sample label of the surface kind (0 = nothing). */
  label: Uint8Array;
}

export function createTarget(width: number, height: number): RasterTarget {
  return {
    width, height, depth: new Float64Array(width * height).fill(Infinity), color: new Float64Array(width * height * 3),
    alpha: new Float64Array(width * height), label: new Uint8Array(width * height),
  };
}

export function clearTarget(t: RasterTarget): void {
  t.depth.fill(Infinity); t.color.fill(0); t.alpha.fill(0); t.label.fill(0);
}

/** One triangle's vertices in screen space: x, y in target samples, w = camera depth (> 0). */
export interface ScreenVertex {
  x: number;
  y: number;
  w: number;
  /** Texture coordinates (pixels of `texture`) or an RGB colour, per the triangle's material. */
  a: number;
  b: number;
  c: number;
  alpha: number;
}

const sampled = new Float64Array(3);

/**
 * Draws one triangle. `texture` given: (a, b) are texture coordinates; otherwise (a, b, c) is the colour.
 * `depthBias` is added to the depth for the test only (to push a layer behind others).
 */
export function drawTriangle(
  t: RasterTarget, v0: ScreenVertex, v1: ScreenVertex, v2: ScreenVertex, label: number,
  texture: RgbImage | null, depthBias = 0,
): void {
  if (v0.w <= 0 || v1.w <= 0 || v2.w <= 0) return;
  const area = (v1.x - v0.x) * (v2.y - v0.y) - (v2.x - v0.x) * (v1.y - v0.y);
  if (Math.abs(area) < 1e-12) return;
  const x0 = Math.max(0, Math.floor(Math.min(v0.x, v1.x, v2.x) - 0.5));
  const x1 = Math.min(t.width - 1, Math.ceil(Math.max(v0.x, v1.x, v2.x) - 0.5));
  const y0 = Math.max(0, Math.floor(Math.min(v0.y, v1.y, v2.y) - 0.5));
  const y1 = Math.min(t.height - 1, Math.ceil(Math.max(v0.y, v1.y, v2.y) - 0.5));
  const iw0 = 1 / v0.w, iw1 = 1 / v1.w, iw2 = 1 / v2.w;
  for (let py = y0; py <= y1; py++) {
    const sy = py + 0.5;
    for (let px = x0; px <= x1; px++) {
      const sx = px + 0.5;
      // Edge functions, normalised so the barycentrics sum to one for either winding.
      const e0 = ((v1.x - sx) * (v2.y - sy) - (v2.x - sx) * (v1.y - sy)) / area;
      const e1 = ((v2.x - sx) * (v0.y - sy) - (v0.x - sx) * (v2.y - sy)) / area;
      const e2 = 1 - e0 - e1;
      if (e0 < 0 || e1 < 0 || e2 < 0) continue;
      const invW = e0 * iw0 + e1 * iw1 + e2 * iw2;
      const depth = 1 / invW;
      const i = py * t.width + px;
      if (depth + depthBias >= t.depth[i]!) continue;
      const p0 = e0 * iw0 * depth, p1 = e1 * iw1 * depth, p2 = e2 * iw2 * depth;
      const a = p0 * v0.a + p1 * v1.a + p2 * v2.a, b = p0 * v0.b + p1 * v1.b + p2 * v2.b;
      if (texture) {
        sampleBilinear(texture, a, b, sampled);
        t.color[i * 3] = sampled[0]!; t.color[i * 3 + 1] = sampled[1]!; t.color[i * 3 + 2] = sampled[2]!;
      } else {
        t.color[i * 3] = a; t.color[i * 3 + 1] = b; t.color[i * 3 + 2] = p0 * v0.c + p1 * v1.c + p2 * v2.c;
      }
      t.alpha[i] = p0 * v0.alpha + p1 * v1.alpha + p2 * v2.alpha;
      t.depth[i] = depth + depthBias;
      t.label[i] = label;
    }
  }
}
