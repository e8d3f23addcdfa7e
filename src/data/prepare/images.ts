/** Image helpers for preprocessing: decode JPEG/PNG files into 8-bit RGB (+ alpha), composite, resize, encode. */
import { readFileSync } from 'node:fs';
import jpeg from 'jpeg-js';
import { PNG } from 'pngjs';
import type { Image8 } from '../format.ts';

/** An 8-bit RGB image with the file's alpha plane when it had one. */
export interface Rgba8 extends Image8 { channels: 3; alpha?: Uint8Array }

export class ImageFileError extends Error {}

export function decodeImage(bytes: Uint8Array, name: string): Rgba8 {
  let width: number, height: number, rgba: Uint8Array, hasAlpha = false;
  if (bytes[0] === 0xff && bytes[1] === 0xd8) {
    try {
      const im = jpeg.decode(bytes, { useTArray: true, formatAsRGBA: true, maxMemoryUsageInMB: 1024 });
      ({ width, height } = im); rgba = im.data;
    } catch (e) { throw new ImageFileError(`${name}: could not decode the JPEG (${(e as Error).message})`); }
  } else if (bytes[0] === 0x89 && bytes[1] === 0x50) {
    try {
      const im = PNG.sync.read(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
      ({ width, height } = im); rgba = im.data;
      hasAlpha = im.alpha ?? false;
    } catch (e) { throw new ImageFileError(`${name}: could not decode the PNG (${(e as Error).message})`); }
  } else {
    throw new ImageFileError(`${name}: is neither a JPEG nor a PNG image`);
  }
  const data = new Uint8Array(width * height * 3);
  const alpha = hasAlpha ? new Uint8Array(width * height) : undefined;
  for (let i = 0; i < width * height; i++) {
    data[i * 3] = rgba[i * 4]!; data[i * 3 + 1] = rgba[i * 4 + 1]!; data[i * 3 + 2] = rgba[i * 4 + 2]!;
    if (alpha) alpha[i] = rgba[i * 4 + 3]!;
  }
  return { width, height, channels: 3, data, ...(alpha ? { alpha } : {}) };
}

export function readImageFile(path: string, name = path): Rgba8 {
  let bytes: Buffer;
  try { bytes = readFileSync(path); } catch { throw new ImageFileError(`${name}: file missing`); }
  return decodeImage(bytes, name);
}

/** `over` composited onto `under` with `alpha` (0–255) per pixel. */
export function compositeOver(over: Image8, alpha: Uint8Array, under: Image8): Image8 {
  const data = new Uint8Array(over.data.length);
  for (let i = 0; i < alpha.length; i++) {
    const a = alpha[i]! / 255;
    for (let c = 0; c < 3; c++) data[i * 3 + c] = Math.round(over.data[i * 3 + c]! * a + under.data[i * 3 + c]! * (1 - a));
  }
  return { width: over.width, height: over.height, channels: 3, data };
}

/** A grayscale Image8 from a mask plane. */
export const maskImage = (data: Uint8Array, width: number, height: number): Image8 => ({ width, height, channels: 1, data });
