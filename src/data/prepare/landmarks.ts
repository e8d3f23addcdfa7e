/**
 * What follows from 68 iBUG-300W landmarks alone (pixels, x right, y down; see docs/dataset-format.md): the three
 * boxes of boxes.f32, the six action-unit intensities of aus.f32, and polygon masks. Shared by the AD-NeRF
 * importer (src/data/import-adnerf.ts) and `nerfad prepare` (src/data/prepare/prepare.ts).
 *
 * Action units — an approximation of OpenFace's, not OpenFace. OpenFace 2 regresses AU intensities (0–5) with SVRs on
 * appearance (HOG) and geometry, calibrated per person by subtracting the clip's median response. We keep only the
 * geometry and the per-person calibration: each AU is a landmark distance divided by the inter-ocular distance
 * D = |p36 − p45| (outer eye corners, so scale and distance to the camera drop out), minus the clip's neutral value
 * (a percentile over the clip — a talking clip is mostly near neutral), times a gain chosen so the range seen in
 * ordinary speech spans roughly 0–4, clamped to [0, 5]. With m(f) the measure of frame f and Pq(m) its q-th
 * percentile over the clip:
 *
 *   AU25 lips part       gap(f)  = mean |inner upper − inner lower| over the pairs (61,67) (62,66) (63,65)
 *                        AU25    = 25 · gap / D                         (closed lips give 0 by construction)
 *   AU26 jaw drop        jaw(f)  = |p33 − p8|  (nose base to chin)
 *                        AU26    = 12 · (jaw − P10(jaw)) / D
 *   AU20 lip stretcher   wide(f) = |p48 − p54| (mouth corners)
 *                        AU20    = 10 · (wide − P50(wide)) / D
 *   AU14 dimpler         the corners pulled in/back with the lips together; in 2D only the widening of a closed
 *                        mouth is visible:  AU14 = 10 · (wide − P50(wide)) / D · max(0, 1 − AU25 / 2)
 *   AU10 upper lip raiser up(f) = |p33 − p51| (nose base to the top of the upper lip), shrinking as the lip rises
 *                        AU10    = 15 · (P90(up) − up) / D
 *   AU45 blink           EAR(f)  = (|p37 − p41| + |p38 − p40|) / (2 |p36 − p39|), averaged over both eyes
 *                        AU45    = 5 · (P50(EAR) − EAR) / (0.7 · P50(EAR))   (blinks are rare, so the median is the
 *                        open eye; an eye at 30 % of it = 5)
 *
 * With a single frame (no clip to calibrate on) the percentiles are that frame's own values, so the calibrated AUs
 * read 0. A frontal view is assumed; strong yaw shortens horizontal distances (AU20/AU14 read low).
 */
import { AU_NAMES, LANDMARKS } from '../format.ts';

export type Point = readonly [number, number];

/** Landmark l of frame f from a [N, 68, 2] array. */
export function landmark(landmarks: ArrayLike<number>, f: number, l: number): Point {
  return [landmarks[(f * LANDMARKS + l) * 2]!, landmarks[(f * LANDMARKS + l) * 2 + 1]!];
}

const dist = (a: Point, b: Point) => Math.hypot(a[0] - b[0], a[1] - b[1]);

function percentile(values: readonly number[], q: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  const at = (q / 100) * (sorted.length - 1), lo = Math.floor(at), hi = Math.ceil(at);
  return sorted[lo]! + (sorted[hi]! - sorted[lo]!) * (at - lo);
}

const clamp05 = (v: number) => Math.min(5, Math.max(0, v));

/** The raw per-frame geometric measures the AU formulas use (all divided by the inter-ocular distance D). */
export interface AuMeasures { gap: number; jaw: number; wide: number; up: number; ear: number }

export function auMeasures(landmarks: ArrayLike<number>, f: number): AuMeasures {
  const p = (l: number) => landmark(landmarks, f, l);
  const d = Math.max(1e-6, dist(p(36), p(45)));
  const gap = (dist(p(61), p(67)) + dist(p(62), p(66)) + dist(p(63), p(65))) / 3;
  const eye = (a: number, b: number, c: number, d2: number, e: number, g: number) =>
    (dist(p(b), p(g)) + dist(p(c), p(e))) / Math.max(1e-6, 2 * dist(p(a), p(d2)));
  const ear = (eye(36, 37, 38, 39, 40, 41) + eye(42, 43, 44, 45, 46, 47)) / 2;
  return { gap: gap / d, jaw: dist(p(33), p(8)) / d, wide: dist(p(48), p(54)) / d, up: dist(p(33), p(51)) / d, ear };
}

/** [N, 6] AU intensities in AU_NAMES order (see the header for the formulas), calibrated over the N frames given. */
export function estimateAus(landmarks: ArrayLike<number>, frameCount: number): Float32Array {
  const m = Array.from({ length: frameCount }, (_, f) => auMeasures(landmarks, f));
  const jaw0 = percentile(m.map((x) => x.jaw), 10), wide0 = percentile(m.map((x) => x.wide), 50);
  const up0 = percentile(m.map((x) => x.up), 90), ear0 = Math.max(1e-6, percentile(m.map((x) => x.ear), 50));
  const out = new Float32Array(frameCount * AU_NAMES.length);
  for (let f = 0; f < frameCount; f++) {
    const { gap, jaw, wide, up, ear } = m[f]!;
    const au25 = clamp05(25 * gap);
    const values: Record<(typeof AU_NAMES)[number], number> = {
      AU10: clamp05(15 * (up0 - up)),
      AU14: clamp05(10 * (wide - wide0) * Math.max(0, 1 - au25 / 2)),
      AU20: clamp05(10 * (wide - wide0)),
      AU25: au25,
      AU26: clamp05(12 * (jaw - jaw0)),
      AU45: clamp05((5 * (ear0 - ear)) / (0.7 * ear0)),
    };
    AU_NAMES.forEach((name, a) => { out[f * AU_NAMES.length + a] = values[name]; });
  }
  return out;
}

export type Box = [number, number, number, number];

const clampBox = ([x0, y0, x1, y1]: Box, width: number, height: number): Box => {
  const cx0 = Math.min(Math.max(0, x0), width - 1), cy0 = Math.min(Math.max(0, y0), height - 1);
  return [cx0, cy0, Math.max(cx0 + 1, Math.min(width, x1)), Math.max(cy0 + 1, Math.min(height, y1))];
};

function bounds(landmarks: ArrayLike<number>, f: number, from: number, to: number): Box {
  let x0 = Infinity, y0 = Infinity, x1 = -Infinity, y1 = -Infinity;
  for (let l = from; l < to; l++) {
    const [x, y] = landmark(landmarks, f, l);
    x0 = Math.min(x0, x); y0 = Math.min(y0, y); x1 = Math.max(x1, x); y1 = Math.max(y1, y);
  }
  return [x0, y0, x1, y1];
}

/**
 * AD-NeRF's `face_rect` (data_util/process_data.py), in corner form: centred on the landmarks' x midpoint and the
 * nose bridge's y (p27), half-width 1.5 × (max x − centre), half-height 1.15 × (chin y − p27.y), clipped at the
 * image's top-left and to W−1, H−1 (integer pixels, as AD-NeRF).
 */
export function adnerfFaceBox(landmarks: ArrayLike<number>, f: number, width: number, height: number): Box {
  const [minX, , maxX] = bounds(landmarks, f, 0, LANDMARKS);
  const cx = Math.trunc((minX + maxX) / 2), cy = Math.trunc(landmark(landmarks, f, 27)[1]);
  const hw = Math.trunc((maxX - cx) * 1.5), hh = Math.trunc((landmark(landmarks, f, 8)[1] - cy) * 1.15);
  const x = Math.max(0, cx - hw), y = Math.max(0, cy - hh);
  const w = Math.min(width - 1 - x, 2 * hw), h = Math.min(height - 1 - y, 2 * hh);
  return clampBox([x, y, x + Math.max(1, w), y + Math.max(1, h)], width, height);
}

/** ER-NeRF's lip rect: the bounds of landmarks 48–67 padded to a square about their centre, clipped to the image. */
export function lipBox(landmarks: ArrayLike<number>, f: number, width: number, height: number): Box {
  const [x0, y0, x1, y1] = bounds(landmarks, f, 48, 68);
  const cx = (x0 + x1) / 2, cy = (y0 + y1) / 2, half = Math.max(1, Math.max(x1 - x0, y1 - y0) / 2);
  return clampBox([Math.floor(cx - half), Math.floor(cy - half), Math.ceil(cx + half), Math.ceil(cy + half)], width, height);
}

/**
 * The square the attention module's face crop is cut from: centred on the landmarks' bounding box, side 1.2 × its
 * longer edge (so the chin and brows stay inside as the head moves), at most min(W, H); shifted, not shrunk, to
 * stay inside the image. Integer corners.
 */
export function cropBox(landmarks: ArrayLike<number>, f: number, width: number, height: number): Box {
  const [x0, y0, x1, y1] = bounds(landmarks, f, 0, LANDMARKS);
  const side = Math.max(2, Math.min(Math.min(width, height), Math.round(1.2 * Math.max(x1 - x0, y1 - y0))));
  const left = Math.min(Math.max(0, Math.round((x0 + x1) / 2 - side / 2)), width - side);
  const top = Math.min(Math.max(0, Math.round((y0 + y1) / 2 - side / 2)), height - side);
  return [left, top, left + side, top + side];
}

/** [N, 3, 4] face (AD-NeRF's rect, or `faceBoxes` when given), lip and crop boxes. */
export function boxesFromLandmarks(landmarks: ArrayLike<number>, frameCount: number, width: number, height: number,
  faceBoxes?: (f: number) => Box | null): Float32Array {
  const out = new Float32Array(frameCount * 12);
  for (let f = 0; f < frameCount; f++) {
    const face = faceBoxes?.(f) ?? adnerfFaceBox(landmarks, f, width, height);
    out.set([...clampBox(face, width, height), ...lipBox(landmarks, f, width, height), ...cropBox(landmarks, f, width, height)], f * 12);
  }
  return out;
}

/** Fills a polygon into an 8-bit mask (255 inside, pixel centres tested, even-odd rule); `into` is overwritten where inside. */
export function fillPolygon(mask: Uint8Array, width: number, height: number, polygon: readonly Point[]): Uint8Array {
  let minY = Infinity, maxY = -Infinity;
  for (const [, y] of polygon) { minY = Math.min(minY, y); maxY = Math.max(maxY, y); }
  const yStart = Math.max(0, Math.floor(minY)), yEnd = Math.min(height - 1, Math.ceil(maxY));
  for (let y = yStart; y <= yEnd; y++) {
    const yc = y + 0.5, xs: number[] = [];
    for (let i = 0; i < polygon.length; i++) {
      const [ax, ay] = polygon[i]!, [bx, by] = polygon[(i + 1) % polygon.length]!;
      if ((ay <= yc) !== (by <= yc)) xs.push(ax + ((yc - ay) / (by - ay)) * (bx - ax));
    }
    xs.sort((a, b) => a - b);
    for (let k = 0; k + 1 < xs.length; k += 2) {
      // pixel i is inside when its centre i + 0.5 lies in [xs[k], xs[k+1])
      const from = Math.max(0, Math.ceil(xs[k]! - 0.5)), to = Math.min(width - 1, Math.ceil(xs[k + 1]! - 0.5) - 1);
      for (let x = from; x <= to; x++) mask[y * width + x] = 255;
    }
  }
  return mask;
}

/** The outer lip contour (48–59) as a polygon. */
export const lipPolygon = (landmarks: ArrayLike<number>, f: number): Point[] =>
  Array.from({ length: 12 }, (_, k) => landmark(landmarks, f, 48 + k));

/**
 * The face as a polygon: the jaw line 0–16, then the brows 26…17 raised by `lift` × the brow-to-chin height (0 for
 * the skin up to the brows; ≈ 0.6 reaches the hairline on a typical face, used for a landmark-only head mask).
 */
export function facePolygon(landmarks: ArrayLike<number>, f: number, lift = 0.15): Point[] {
  const p = (l: number) => landmark(landmarks, f, l);
  const browY = (p(19)[1] + p(24)[1]) / 2, height = p(8)[1] - browY;
  const jaw = Array.from({ length: 17 }, (_, k) => p(k));
  const brows = Array.from({ length: 10 }, (_, k) => p(26 - k)).map(([x, y]) => [x, y - lift * height] as Point);
  return [...jaw, ...brows];
}
