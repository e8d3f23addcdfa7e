/**
 * float64 references for conv2d and convTranspose2d (torch semantics), forward and backward, written as the plain
 * loops of the definitions. They are independent of the kernels' formulation: the forward of the transposed
 * convolution is written as a scatter (each input pixel spreads into the output), and every backward is the
 * adjoint of its forward loop (the same loop nest, accumulating into the gradients).
 *
 * Shapes: x [N, C_in, H, W]; conv weight [C_out, C_in, kh, kw]; transposed weight [C_in, C_out, kh, kw]; bias [C_out].
 */
import { convOutputSize, convTransposeOutputSize } from './conv2d.ts';

export interface ConvGeometry {
  stride: [number, number];
  padding: [number, number];
  dilation: [number, number];
}

export interface ConvGrads {
  dx: Float64Array;
  dw: Float64Array;
  db: Float64Array;
}

/** Visits every (input element, weight element, output element) triple of a convolution: the shared loop nest. */
function forEachConvTap(
  xShape: readonly number[],
  cOut: number,
  kernel: [number, number],
  outSize: [number, number],
  g: ConvGeometry,
  visit: (xIndex: number, n: number, ci: number, co: number, ky: number, kx: number, outIndex: number) => void,
): void {
  const [N, C, H, W] = xShape;
  const [kh, kw] = kernel;
  const [Ho, Wo] = outSize;
  for (let n = 0; n < N; n++)
    for (let co = 0; co < cOut; co++)
      for (let oy = 0; oy < Ho; oy++)
        for (let ox = 0; ox < Wo; ox++)
          for (let ci = 0; ci < C; ci++)
            for (let ky = 0; ky < kh; ky++)
              for (let kx = 0; kx < kw; kx++) {
                const iy = oy * g.stride[0] - g.padding[0] + ky * g.dilation[0];
                const ix = ox * g.stride[1] - g.padding[1] + kx * g.dilation[1];
                if (iy < 0 || iy >= H || ix < 0 || ix >= W) continue;
                visit(((n * C + ci) * H + iy) * W + ix, n, ci, co, ky, kx, ((n * cOut + co) * Ho + oy) * Wo + ox);
              }
}

export function conv2dOutputShape(xShape: readonly number[], wShape: readonly number[], g: ConvGeometry): number[] {
  return [
    xShape[0],
    wShape[0],
    convOutputSize(xShape[2], wShape[2], g.stride[0], g.padding[0], g.dilation[0]),
    convOutputSize(xShape[3], wShape[3], g.stride[1], g.padding[1], g.dilation[1]),
  ];
}

/** y[n, co, oy, ox] = b[co] + Σ_{ci, ky, kx} w[co, ci, ky, kx] · x[n, ci, oy·s − p + ky·d, ox·s − p + kx·d]. */
export function conv2dReference(
  x: Float64Array,
  xShape: readonly number[],
  w: Float64Array,
  wShape: readonly number[],
  bias: Float64Array | null,
  g: ConvGeometry,
): Float64Array {
  const [, cOut, Ho, Wo] = conv2dOutputShape(xShape, wShape, g);
  const [, C, kh, kw] = wShape;
  const y = new Float64Array(xShape[0] * cOut * Ho * Wo);
  if (bias) for (let i = 0; i < y.length; i++) y[i] = bias[Math.floor(i / (Ho * Wo)) % cOut];
  forEachConvTap(xShape, cOut, [kh, kw], [Ho, Wo], g, (xi, _n, ci, co, ky, kx, yi) => {
    y[yi] += w[((co * C + ci) * kh + ky) * kw + kx] * x[xi];
  });
  return y;
}

/** The adjoint of conv2dReference's loop: gradients of L = Σ dL_dy ⊙ y. */
export function conv2dBackwardReference(
  x: Float64Array,
  xShape: readonly number[],
  w: Float64Array,
  wShape: readonly number[],
  dL_dy: Float64Array,
  g: ConvGeometry,
): ConvGrads {
  const [, cOut, Ho, Wo] = conv2dOutputShape(xShape, wShape, g);
  const [, C, kh, kw] = wShape;
  const dx = new Float64Array(x.length);
  const dw = new Float64Array(w.length);
  const db = new Float64Array(cOut);
  for (let i = 0; i < dL_dy.length; i++) db[Math.floor(i / (Ho * Wo)) % cOut] += dL_dy[i];
  forEachConvTap(xShape, cOut, [kh, kw], [Ho, Wo], g, (xi, _n, ci, co, ky, kx, yi) => {
    const wi = ((co * C + ci) * kh + ky) * kw + kx;
    dx[xi] += w[wi] * dL_dy[yi];
    dw[wi] += x[xi] * dL_dy[yi];
  });
  return { dx, dw, db };
}

export function convTranspose2dOutputShape(
  xShape: readonly number[],
  wShape: readonly number[],
  g: ConvGeometry,
  outputPadding: [number, number],
): number[] {
  return [
    xShape[0],
    wShape[1],
    convTransposeOutputSize(xShape[2], wShape[2], g.stride[0], g.padding[0], g.dilation[0], outputPadding[0]),
    convTransposeOutputSize(xShape[3], wShape[3], g.stride[1], g.padding[1], g.dilation[1], outputPadding[1]),
  ];
}

/** Visits every (input element, weight element, output element) triple of a transposed convolution, as a scatter. */
function forEachTransposedTap(
  xShape: readonly number[],
  wShape: readonly number[],
  outShape: readonly number[],
  g: ConvGeometry,
  visit: (xIndex: number, wIndex: number, outIndex: number) => void,
): void {
  const [N, C, H, W] = xShape;
  const [, cOut, kh, kw] = wShape;
  const [, , Ho, Wo] = outShape;
  for (let n = 0; n < N; n++)
    for (let ci = 0; ci < C; ci++)
      for (let iy = 0; iy < H; iy++)
        for (let ix = 0; ix < W; ix++)
          for (let co = 0; co < cOut; co++)
            for (let ky = 0; ky < kh; ky++)
              for (let kx = 0; kx < kw; kx++) {
                // Input pixel (iy, ix) spreads to output (iy·s − p + ky·d, ix·s − p + kx·d).
                const oy = iy * g.stride[0] - g.padding[0] + ky * g.dilation[0];
                const ox = ix * g.stride[1] - g.padding[1] + kx * g.dilation[1];
                if (oy < 0 || oy >= Ho || ox < 0 || ox >= Wo) continue;
                visit(((n * C + ci) * H + iy) * W + ix, ((ci * cOut + co) * kh + ky) * kw + kx, ((n * cOut + co) * Ho + oy) * Wo + ox);
              }
}

/** torch.nn.functional.conv_transpose2d: the adjoint (w.r.t. x) of conv2d with the same weight and geometry. */
export function convTranspose2dReference(
  x: Float64Array,
  xShape: readonly number[],
  w: Float64Array,
  wShape: readonly number[],
  bias: Float64Array | null,
  g: ConvGeometry,
  outputPadding: [number, number],
): Float64Array {
  const outShape = convTranspose2dOutputShape(xShape, wShape, g, outputPadding);
  const [, cOut, Ho, Wo] = outShape;
  const y = new Float64Array(outShape[0] * cOut * Ho * Wo);
  if (bias) for (let i = 0; i < y.length; i++) y[i] = bias[Math.floor(i / (Ho * Wo)) % cOut];
  forEachTransposedTap(xShape, wShape, outShape, g, (xi, wi, yi) => {
    y[yi] += x[xi] * w[wi];
  });
  return y;
}

export function convTranspose2dBackwardReference(
  x: Float64Array,
  xShape: readonly number[],
  w: Float64Array,
  wShape: readonly number[],
  dL_dy: Float64Array,
  g: ConvGeometry,
  outputPadding: [number, number],
): ConvGrads {
  const outShape = convTranspose2dOutputShape(xShape, wShape, g, outputPadding);
  const [, cOut, Ho, Wo] = outShape;
  const dx = new Float64Array(x.length);
  const dw = new Float64Array(w.length);
  const db = new Float64Array(cOut);
  for (let i = 0; i < dL_dy.length; i++) db[Math.floor(i / (Ho * Wo)) % cOut] += dL_dy[i];
  forEachTransposedTap(xShape, wShape, outShape, g, (xi, wi, yi) => {
    dx[xi] += w[wi] * dL_dy[yi];
    dw[wi] += x[xi] * dL_dy[yi];
  });
  return { dx, dw, db };
}
