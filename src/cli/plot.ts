/**
 * A small line-plot renderer to PNG (via pngjs): axes, "nice" ticks (linear or log10), tick labels, axis labels,
 * a title and a legend, drawn with anti-aliased lines and a 5×7 bitmap font. Enough for loss and PSNR curves.
 *
 *   writeLinePlot('plots/loss.png', { title: 'loss', xLabel: 'step', logY: true,
 *     series: [{ name: 'train', x: steps, y: losses }] });
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { PNG } from 'pngjs';
import { GLYPH_ADVANCE, GLYPH_HEIGHT, glyphColumns } from './font5x7.ts';

export type Rgb = readonly [number, number, number];

export interface PlotSeries {
  name: string;
  x: ArrayLike<number>;
  y: ArrayLike<number>;
  color?: Rgb;
}

export interface LinePlotOptions {
  series: readonly PlotSeries[];
  width?: number;
  height?: number;
  title?: string;
  xLabel?: string;
  yLabel?: string;
  /** Log10 y axis; non-positive values are left out. */
  logY?: boolean;
}

/** matplotlib's tab10 palette. */
export const PALETTE: readonly Rgb[] = [
  [31, 119, 180], [255, 127, 14], [44, 160, 44], [214, 39, 40], [148, 103, 189],
  [140, 86, 75], [227, 119, 194], [127, 127, 127], [188, 189, 34], [23, 190, 207],
];

const BLACK: Rgb = [0, 0, 0];
const GRID: Rgb = [225, 225, 225];
const TEXT: Rgb = [40, 40, 40];

/** An RGBA image with the few drawing primitives a plot needs. */
export class Canvas {
  readonly data: Uint8Array;
  constructor(
    readonly width: number,
    readonly height: number,
    background: Rgb = [255, 255, 255],
  ) {
    this.data = new Uint8Array(width * height * 4);
    for (let i = 0; i < width * height; i++) this.data.set([...background, 255], i * 4);
  }

  /** Blends `color` over pixel (x, y) with coverage `alpha` in [0, 1]. */
  blend(x: number, y: number, color: Rgb, alpha = 1): void {
    if (x < 0 || y < 0 || x >= this.width || y >= this.height || alpha <= 0) return;
    const i = (y * this.width + x) * 4;
    const a = Math.min(1, alpha);
    for (let c = 0; c < 3; c++) this.data[i + c] = Math.round(this.data[i + c] * (1 - a) + color[c] * a);
  }

  fillRect(x: number, y: number, w: number, h: number, color: Rgb): void {
    for (let yy = Math.max(0, y); yy < Math.min(this.height, y + h); yy++) {
      for (let xx = Math.max(0, x); xx < Math.min(this.width, x + w); xx++) this.blend(xx, yy, color);
    }
  }

  /** An anti-aliased segment of the given width: coverage from the distance of each pixel centre to the segment. */
  line(x0: number, y0: number, x1: number, y1: number, color: Rgb, width = 1): void {
    const half = width / 2;
    const minX = Math.floor(Math.min(x0, x1) - half - 1);
    const maxX = Math.ceil(Math.max(x0, x1) + half + 1);
    const minY = Math.floor(Math.min(y0, y1) - half - 1);
    const maxY = Math.ceil(Math.max(y0, y1) + half + 1);
    const dx = x1 - x0;
    const dy = y1 - y0;
    const lengthSq = dx * dx + dy * dy;
    for (let py = Math.max(0, minY); py <= Math.min(this.height - 1, maxY); py++) {
      for (let px = Math.max(0, minX); px <= Math.min(this.width - 1, maxX); px++) {
        const cx = px + 0.5;
        const cy = py + 0.5;
        const t = lengthSq === 0 ? 0 : Math.max(0, Math.min(1, ((cx - x0) * dx + (cy - y0) * dy) / lengthSq));
        const distance = Math.hypot(cx - (x0 + t * dx), cy - (y0 + t * dy));
        const coverage = half + 0.5 - distance;
        if (coverage > 0) this.blendMax(px, py, color, Math.min(1, coverage));
      }
    }
  }

  /** Like blend, but a pixel already covered by the same line keeps its stronger coverage (no dark joints). */
  private blendMax(x: number, y: number, color: Rgb, alpha: number): void {
    const key = y * this.width + x;
    const previous = this.lineCoverage.get(key) ?? 0;
    if (alpha <= previous) return;
    this.lineCoverage.set(key, alpha);
    // Blend only the extra coverage over what is there: (1 − a)/(1 − p) of the background survives.
    this.blend(x, y, color, previous >= 1 ? 0 : (alpha - previous) / (1 - previous));
  }

  private lineCoverage = new Map<number, number>();

  /** Call between polylines so that each one's coverage is tracked separately. */
  endPolyline(): void {
    this.lineCoverage = new Map();
  }

  /** Text with its top-left corner at (x, y); `vertical` runs it bottom-to-top (rotated 90° left). */
  text(x: number, y: number, text: string, color: Rgb = TEXT, scale = 1, vertical = false): void {
    [...text].forEach((char, k) => {
      const columns = glyphColumns(char);
      for (let col = 0; col < columns.length; col++) {
        for (let row = 0; row < GLYPH_HEIGHT; row++) {
          if (!((columns[col] >> row) & 1)) continue;
          const gx = k * GLYPH_ADVANCE + col;
          for (let sy = 0; sy < scale; sy++) {
            for (let sx = 0; sx < scale; sx++) {
              if (vertical) this.blend(x + row * scale + sy, y - gx * scale - sx, color);
              else this.blend(x + gx * scale + sx, y + row * scale + sy, color);
            }
          }
        }
      }
    });
  }

  toPng(): Buffer {
    const png = new PNG({ width: this.width, height: this.height });
    png.data = Buffer.from(this.data.buffer, this.data.byteOffset, this.data.byteLength);
    return PNG.sync.write(png);
  }
}

export function textWidth(text: string, scale = 1): number {
  return Math.max(0, [...text].length * GLYPH_ADVANCE - 1) * scale;
}

/** Ticks at 1, 2 or 5 × 10^k covering [lo, hi], about `target` of them. */
export function niceTicks(lo: number, hi: number, target = 6): number[] {
  if (!(hi > lo)) return [lo];
  const raw = (hi - lo) / target;
  const magnitude = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * magnitude).find((s) => s >= raw) ?? 10 * magnitude;
  const ticks: number[] = [];
  // Integer multiples of the step, rounded to 12 significant digits (no 0.060000000000000005).
  for (let k = Math.ceil(lo / step - 1e-9); k * step <= hi + step * 1e-9; k++) ticks.push(k === 0 ? 0 : Number((k * step).toPrecision(12)));
  return ticks;
}

/** Ticks for a log10 axis over [lo, hi] (given as log10 values): decades, or 1-2-5 within a decade or two. */
export function logTicks(lo: number, hi: number): number[] {
  const decades = hi - lo;
  const ticks: number[] = [];
  if (decades > 2.5) {
    const every = Math.max(1, Math.ceil(decades / 7));
    for (let e = Math.ceil(lo); e <= Math.floor(hi); e += every) ticks.push(e);
  } else {
    for (let e = Math.floor(lo); e <= Math.ceil(hi); e++) {
      for (const m of decades > 1 ? [1, 2, 5] : [1, 2, 3, 5, 7]) {
        const v = e + Math.log10(m);
        if (v >= lo - 1e-9 && v <= hi + 1e-9) ticks.push(v);
      }
    }
  }
  return ticks.length >= 2 ? ticks : niceTicks(lo, hi, 4);
}

/** A short label for a tick value, with as many decimals as the tick spacing needs. */
export function formatTick(value: number, spacing: number): string {
  if (value === 0) return '0';
  const abs = Math.abs(value);
  if (abs >= 1e5 || abs < 1e-3) {
    const [mantissa, exponent] = value.toExponential(1).split('e');
    return `${mantissa.replace(/\.0$/, '')}e${Number(exponent)}`;
  }
  const decimals = Math.max(0, Math.min(6, -Math.floor(Math.log10(spacing) + 1e-9)));
  return value.toFixed(decimals);
}

interface Range {
  lo: number;
  hi: number;
}


function extent(values: number[]): Range {
  let lo = Infinity;
  let hi = -Infinity;
  for (const v of values) {
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  if (!Number.isFinite(lo)) return { lo: 0, hi: 1 };
  if (lo === hi) {
    const pad = lo === 0 ? 1 : Math.abs(lo) * 0.1;
    return { lo: lo - pad, hi: hi + pad };
  }
  return { lo, hi };
}

/** Renders a line plot into a canvas. */
export function renderLinePlot(options: LinePlotOptions): Canvas {
  const width = options.width ?? 800;
  const height = options.height ?? 480;
  const canvas = new Canvas(width, height);
  const logY = options.logY ?? false;
  const toY = (v: number): number => (logY ? (v > 0 ? Math.log10(v) : NaN) : v);

  // The data in plot coordinates (log10 for a log axis); non-finite points break the line.
  const series = options.series.map((s, k) => {
    const n = Math.min(s.x.length, s.y.length);
    const points: [number, number][] = [];
    for (let i = 0; i < n; i++) points.push([s.x[i], toY(s.y[i])]);
    return { name: s.name, color: s.color ?? PALETTE[k % PALETTE.length], points };
  });
  const finite = series.flatMap((s) => s.points.filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y)));
  const xRange = extent(finite.map(([x]) => x));
  // Steps counted from 1 read better on an axis that starts at 0.
  if (xRange.lo > 0 && xRange.lo < 0.1 * xRange.hi) xRange.lo = 0;
  let yRange = extent(finite.map(([, y]) => y));
  const yPad = 0.05 * (yRange.hi - yRange.lo);
  yRange = { lo: yRange.lo - yPad, hi: yRange.hi + yPad };

  const xTicks = niceTicks(xRange.lo, xRange.hi, 7).filter((t) => t >= xRange.lo - 1e-9 && t <= xRange.hi + 1e-9);
  const yTicks = logY ? logTicks(yRange.lo, yRange.hi) : niceTicks(yRange.lo, yRange.hi, 6);
  const yLabels = yTicks.map((t) => {
    if (!logY) return formatTick(t, yTicks.length > 1 ? yTicks[1] - yTicks[0] : Math.abs(t) || 1);
    // The spacing that matters for a log tick is its own magnitude (0.02 needs two decimals).
    const v = Number((10 ** t).toPrecision(3));
    return formatTick(v, 10 ** Math.floor(Math.log10(v) + 1e-9));
  });
  const xSpacing = xTicks.length > 1 ? xTicks[1] - xTicks[0] : 1;
  const xLabels = xTicks.map((t) => formatTick(t, xSpacing));

  const title = options.title ?? '';
  const left = 16 + (options.yLabel ? 14 : 0) + Math.max(0, ...yLabels.map((l) => textWidth(l)));
  const top = title ? 34 : 14;
  const bottom = 34 + (options.xLabel ? 14 : 0);
  const right = 20;
  const plotW = width - left - right;
  const plotH = height - top - bottom;
  if (plotW < 20 || plotH < 20) throw new Error(`renderLinePlot: ${width}×${height} is too small for a plot`);
  const px = (x: number): number => left + ((x - xRange.lo) / (xRange.hi - xRange.lo)) * plotW;
  const py = (y: number): number => top + plotH - ((y - yRange.lo) / (yRange.hi - yRange.lo)) * plotH;

  // Grid, ticks and tick labels.
  yTicks.forEach((t, i) => {
    const y = Math.round(py(t));
    if (y < top || y > top + plotH) return;
    canvas.fillRect(left, y, plotW, 1, GRID);
    canvas.fillRect(left - 4, y, 4, 1, BLACK);
    canvas.text(left - 7 - textWidth(yLabels[i]), y - 3, yLabels[i]);
  });
  xTicks.forEach((t, i) => {
    const x = Math.round(px(t));
    canvas.fillRect(x, top, 1, plotH, GRID);
    canvas.fillRect(x, top + plotH, 1, 4, BLACK);
    canvas.text(x - Math.floor(textWidth(xLabels[i]) / 2), top + plotH + 8, xLabels[i]);
  });

  // The data, clipped to the plot area by construction (ranges cover every finite point).
  for (const s of series) {
    let previous: [number, number] | null = null;
    let drawn = 0;
    for (const [x, y] of s.points) {
      if (!Number.isFinite(x) || !Number.isFinite(y)) {
        previous = null;
        continue;
      }
      const point: [number, number] = [px(x), py(y)];
      if (previous) canvas.line(previous[0], previous[1], point[0], point[1], s.color, 1.8);
      previous = point;
      drawn++;
    }
    // A lone point would be invisible as a line: mark it.
    if (drawn === 1) {
      const only = s.points.find(([x, y]) => Number.isFinite(x) && Number.isFinite(y))!;
      canvas.line(px(only[0]), py(only[1]), px(only[0]), py(only[1]), s.color, 5);
    }
    canvas.endPolyline();
  }

  // Axes box.
  canvas.fillRect(left, top, plotW + 1, 1, BLACK);
  canvas.fillRect(left, top + plotH, plotW + 1, 1, BLACK);
  canvas.fillRect(left, top, 1, plotH + 1, BLACK);
  canvas.fillRect(left + plotW, top, 1, plotH + 1, BLACK);

  // Title and axis labels.
  if (title) canvas.text(Math.round(left + plotW / 2 - textWidth(title, 2) / 2), 10, title, TEXT, 2);
  if (options.xLabel) canvas.text(Math.round(left + plotW / 2 - textWidth(options.xLabel) / 2), height - 14, options.xLabel);
  if (options.yLabel) canvas.text(4, Math.round(top + plotH / 2 + textWidth(options.yLabel) / 2), options.yLabel, TEXT, 1, true);

  // Legend, top right inside the plot.
  const named = series.filter((s) => s.name);
  if (named.length > 0) {
    const rowH = 14;
    const boxW = 34 + Math.max(...named.map((s) => textWidth(s.name)));
    const boxH = 8 + rowH * named.length;
    // The corner whose box hides the fewest data points.
    const corners: [number, number][] = [
      [left + plotW - boxW - 8, top + 8],
      [left + plotW - boxW - 8, top + plotH - boxH - 8],
      [left + 8, top + 8],
      [left + 8, top + plotH - boxH - 8],
    ];
    const hidden = ([cx, cy]: [number, number]): number =>
      finite.filter(([x, y]) => {
        const [X, Y] = [px(x), py(y)];
        return X >= cx - 4 && X <= cx + boxW + 4 && Y >= cy - 4 && Y <= cy + boxH + 4;
      }).length;
    const counts = corners.map(hidden);
    const [bx, by] = corners[counts.indexOf(Math.min(...counts))];
    canvas.fillRect(bx, by, boxW, boxH, [255, 255, 255]);
    canvas.fillRect(bx, by, boxW, 1, [160, 160, 160]);
    canvas.fillRect(bx, by + boxH - 1, boxW, 1, [160, 160, 160]);
    canvas.fillRect(bx, by, 1, boxH, [160, 160, 160]);
    canvas.fillRect(bx + boxW - 1, by, 1, boxH, [160, 160, 160]);
    named.forEach((s, k) => {
      const y = by + 4 + k * rowH + 7;
      canvas.line(bx + 6, y, bx + 24, y, s.color, 2.5);
      canvas.endPolyline();
      canvas.text(bx + 29, y - 4, s.name);
    });
  }
  return canvas;
}

export function linePlotPng(options: LinePlotOptions): Buffer {
  return renderLinePlot(options).toPng();
}

export function writeLinePlot(path: string, options: LinePlotOptions): void {
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, linePlotPng(options));
}
