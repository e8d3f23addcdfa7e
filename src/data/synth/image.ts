/** Small RGB(A) image helpers for the synthetic generator: decode JPEG/PNG, crop, bilinear sampling, PNG/JPEG out. */
import { readFileSync } from 'node:fs';
import jpeg from 'jpeg-js';
import { PNG } from 'pngjs';

/** Interleaved RGB in [0, 1], row-major, float64. */
export interface RgbImage {
  width: number;
  height: number;
  data: Float64Array;
}

export function decodeImageFile(path: string): RgbImage {
  const bytes = readFileSync(path);
  let width: number, height: number, rgba: Uint8Array;
  if (bytes[0] === 0xff && bytes[1] === 0xd8) {
    const im = jpeg.decode(bytes, { useTArray: true, formatAsRGBA: true });
    ({ width, height } = im); rgba = im.data;
  } else if (bytes[0] === 0x89 && bytes[1] === 0x50) {
    const im = PNG.sync.read(bytes);
    ({ width, height } = im); rgba = im.data;
  } else {
    throw new Error(`synth: ${path} is neither a JPEG nor a PNG image`);
  }
  const data = new Float64Array(width * height * 3);
  for (let i = 0; i < width * height; i++) for (let c = 0; c < 3; c++) data[i * 3 + c] = rgba[i * 4 + c]! / 255;
  return { width, height, data };
}

export function cropImage(im: RgbImage, x0: number, y0: number, w: number, h: number): RgbImage {
  const data = new Float64Array(w * h * 3);
  for (let y = 0; y < h; y++) {
    const row = ((y + y0) * im.width + x0) * 3;
    data.set(im.data.subarray(row, row + w * 3), y * w * 3);
  }
  return { width: w, height: h, data };
}

/** Bilinear sample at continuous coordinates (pixel (i, j) covers [i, i+1) × [j, j+1)); clamps at the border. */
export function sampleBilinear(im: RgbImage, x: number, y: number, out: Float64Array, at = 0): void {
  const fx = Math.min(Math.max(x - 0.5, 0), im.width - 1), fy = Math.min(Math.max(y - 0.5, 0), im.height - 1);
  const x0 = Math.floor(fx), y0 = Math.floor(fy);
  const x1 = Math.min(x0 + 1, im.width - 1), y1 = Math.min(y0 + 1, im.height - 1);
  const ax = fx - x0, ay = fy - y0, d = im.data, w = im.width;
  for (let c = 0; c < 3; c++) {
    const top = d[(y0 * w + x0) * 3 + c]! * (1 - ax) + d[(y0 * w + x1) * 3 + c]! * ax;
    const bottom = d[(y1 * w + x0) * 3 + c]! * (1 - ax) + d[(y1 * w + x1) * 3 + c]! * ax;
    out[at + c] = top * (1 - ay) + bottom * ay;
  }
}

/** Area-averaged resize (exact box filter for integer factors, bilinear-ish otherwise). */
export function resizeImage(im: RgbImage, width: number, height: number): RgbImage {
  const data = new Float64Array(width * height * 3);
  const sx = im.width / width, sy = im.height / height;
  for (let y = 0; y < height; y++) for (let x = 0; x < width; x++) {
    let r = 0, g = 0, b = 0, n = 0;
    const xa = Math.floor(x * sx), xb = Math.max(xa + 1, Math.floor((x + 1) * sx));
    const ya = Math.floor(y * sy), yb = Math.max(ya + 1, Math.floor((y + 1) * sy));
    for (let yy = ya; yy < yb; yy++) for (let xx = xa; xx < xb; xx++) {
      const i = (yy * im.width + xx) * 3;
      r += im.data[i]!; g += im.data[i + 1]!; b += im.data[i + 2]!; n++;
    }
    const o = (y * width + x) * 3;
    data[o] = r / n; data[o + 1] = g / n; data[o + 2] = b / n;
  }
  return { width, height, data };
}

const to8 = (v: number) => Math.max(0, Math.min(255, Math.round(v * 255)));

/** PNG bytes of an RGB image, with an optional alpha plane in [0, 1]. */
export function encodePng(im: RgbImage, alpha?: Float64Array): Uint8Array {
  const png = new PNG({ width: im.width, height: im.height });
  for (let i = 0; i < im.width * im.height; i++) {
    for (let c = 0; c < 3; c++) png.data[i * 4 + c] = to8(im.data[i * 3 + c]!);
    png.data[i * 4 + 3] = alpha ? to8(alpha[i]!) : 255;
  }
  return PNG.sync.write(png);
}

/** PNG bytes of a single-channel mask in [0, 1] (8-bit grey). */
export function encodeMaskPng(mask: Float64Array | Uint8Array, width: number, height: number): Uint8Array {
  const png = new PNG({ width, height, colorType: 0, inputColorType: 0, inputHasAlpha: false } as never);
  const scale = mask instanceof Uint8Array ? 255 : 1;
  const grey = Buffer.alloc(width * height);
  for (let i = 0; i < width * height; i++) grey[i] = mask instanceof Uint8Array ? mask[i]! * scale : to8(mask[i]!);
  // pngjs wants RGBA input unless told otherwise; give it RGBA and ask for a grey file.
  const rgba = Buffer.alloc(width * height * 4);
  for (let i = 0; i < width * height; i++) { rgba[i * 4] = rgba[i * 4 + 1] = rgba[i * 4 + 2] = grey[i]!; rgba[i * 4 + 3] = 255; }
  png.data = rgba;
  return PNG.sync.write(png, { colorType: 0 });
}

export function encodeJpeg(im: RgbImage, quality: number): Uint8Array {
  const rgba = Buffer.alloc(im.width * im.height * 4);
  for (let i = 0; i < im.width * im.height; i++) {
    for (let c = 0; c < 3; c++) rgba[i * 4 + c] = to8(im.data[i * 3 + c]!);
    rgba[i * 4 + 3] = 255;
  }
  return jpeg.encode({ data: rgba, width: im.width, height: im.height }, quality).data;
}
