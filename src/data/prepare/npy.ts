/**
 * A minimal reader of NumPy `.npy` files (format versions 1–3): little- or big-endian float32/float64/int32/int64
 * arrays in C order, returned as float64 with their shape. Enough for the anchors' `aud.npy` ([N, 16, 29] float32).
 */
export class NpyError extends Error {}

export interface NpyArray { shape: number[]; data: Float64Array; dtype: string }

export function readNpy(bytes: Uint8Array, name = 'npy'): NpyArray {
  const magic = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59];
  if (bytes.length < 10 || !magic.every((b, i) => bytes[i] === b)) throw new NpyError(`${name}: is not a .npy file (no \\x93NUMPY magic)`);
  const major = bytes[6]!;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerLength = major === 1 ? view.getUint16(8, true) : view.getUint32(8, true);
  const headerStart = major === 1 ? 10 : 12;
  const header = new TextDecoder().decode(bytes.subarray(headerStart, headerStart + headerLength));
  const descr = /'descr':\s*'([^']+)'/.exec(header)?.[1];
  const fortran = /'fortran_order':\s*(True|False)/.exec(header)?.[1];
  const shapeText = /'shape':\s*\(([^)]*)\)/.exec(header)?.[1];
  if (!descr || !fortran || shapeText === undefined) throw new NpyError(`${name}: unreadable .npy header ${JSON.stringify(header.trim())}`);
  if (fortran === 'True') throw new NpyError(`${name}: Fortran-ordered arrays are not supported`);
  const shape = shapeText.split(',').map((s) => s.trim()).filter(Boolean).map(Number);
  const count = shape.reduce((a, b) => a * b, 1);
  const little = descr[0] !== '>';
  const kind = descr.slice(1);
  const size = { f4: 4, f8: 8, i4: 4, i8: 8 }[kind];
  if (!size) throw new NpyError(`${name}: dtype ${descr} is not supported (float32/64, int32/64)`);
  const start = headerStart + headerLength;
  if (bytes.length < start + count * size) {
    throw new NpyError(`${name}: holds ${bytes.length - start} data bytes, shape [${shape.join(', ')}] of ${descr} needs ${count * size}`);
  }
  const data = new Float64Array(count);
  for (let i = 0; i < count; i++) {
    const at = start + i * size;
    data[i] = kind === 'f4' ? view.getFloat32(at, little) : kind === 'f8' ? view.getFloat64(at, little)
      : kind === 'i4' ? view.getInt32(at, little) : Number(view.getBigInt64(at, little));
  }
  return { shape, data, dtype: descr };
}
