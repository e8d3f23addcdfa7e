/**
 * Images to and from PNG files (pngjs), as row-major float pixels in [0, 1] with 1, 3 or 4 channels: what
 * experiments need to write targets and reconstructions next to each other.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { PNG } from 'pngjs';

export interface FloatImage {
  width: number;
  height: number;
  channels: 1 | 3 | 4;
  /** Row-major, channels interleaved, values in [0, 1] (clamped when written). */
  data: Float32Array;
}

/** Encodes a float image as an 8-bit RGBA PNG. */
export function encodePng(image: FloatImage): Buffer {
  const { width, height, channels, data } = image;
  if (![1, 3, 4].includes(channels)) throw new Error(`encodePng: channels must be 1, 3 or 4, got ${channels}`);
  if (data.length !== width * height * channels) {
    throw new Error(`encodePng: ${data.length} values do not fill ${width}×${height}×${channels}`);
  }
  const png = new PNG({ width, height });
  const to8 = (v: number): number => Math.round(Math.min(1, Math.max(0, Number.isFinite(v) ? v : 0)) * 255);
  for (let p = 0; p < width * height; p++) {
    const src = p * channels;
    const r = to8(data[src]);
    png.data[p * 4] = r;
    png.data[p * 4 + 1] = channels === 1 ? r : to8(data[src + 1]);
    png.data[p * 4 + 2] = channels === 1 ? r : to8(data[src + 2]);
    png.data[p * 4 + 3] = channels === 4 ? to8(data[src + 3]) : 255;
  }
  return PNG.sync.write(png);
}

export function writeImagePng(path: string, image: FloatImage): void {
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, encodePng(image));
}

/** Reads a PNG as RGB (or RGBA with `keepAlpha`) floats in [0, 1]. */
export function readImagePng(path: string, keepAlpha = false): FloatImage {
  const png = PNG.sync.read(readFileSync(path));
  const channels = keepAlpha ? 4 : 3;
  const data = new Float32Array(png.width * png.height * channels);
  for (let p = 0; p < png.width * png.height; p++) {
    for (let c = 0; c < channels; c++) data[p * channels + c] = png.data[p * 4 + c] / 255;
  }
  return { width: png.width, height: png.height, channels, data };
}

/** Places images side by side (same height, same channels) with a `gap` of white pixels between them. */
export function sideBySide(images: readonly FloatImage[], gap = 4): FloatImage {
  if (images.length === 0) throw new Error('sideBySide: no images');
  const { height, channels } = images[0];
  for (const im of images) {
    if (im.height !== height || im.channels !== channels) {
      throw new Error(`sideBySide: images differ (${im.width}×${im.height}×${im.channels} vs height ${height}, ${channels} channels)`);
    }
  }
  const width = images.reduce((w, im) => w + im.width, 0) + gap * (images.length - 1);
  const data = new Float32Array(width * height * channels).fill(1);
  let x0 = 0;
  for (const im of images) {
    for (let y = 0; y < height; y++) {
      data.set(im.data.subarray(y * im.width * channels, (y + 1) * im.width * channels), (y * width + x0) * channels);
    }
    x0 += im.width + gap;
  }
  return { width, height, channels, data };
}

/** Enlarges an image by an integer factor with nearest-neighbour sampling (crisp pixels for small images). */
export function upscale(image: FloatImage, factor: number): FloatImage {
  if (!Number.isInteger(factor) || factor < 1) throw new Error(`upscale: factor must be a whole number ≥ 1, got ${factor}`);
  const { width, height, channels } = image;
  const out = new Float32Array(width * factor * height * factor * channels);
  for (let y = 0; y < height * factor; y++) {
    for (let x = 0; x < width * factor; x++) {
      const src = (Math.floor(y / factor) * width + Math.floor(x / factor)) * channels;
      out.set(image.data.subarray(src, src + channels), (y * width * factor + x) * channels);
    }
  }
  return { width: width * factor, height: height * factor, channels, data: out };
}
