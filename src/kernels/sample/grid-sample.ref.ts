/**
 * float64 reference of bilinear grid_sample (torch semantics) and its gradients, following torch's CPU algorithm:
 * unnormalise each grid coordinate to a pixel position, (border: clip it, with gradient 0 on and beyond the border),
 * take the 4 corners of the cell around it and weight them bilinearly; out-of-image corners read as 0.
 *
 * Shapes: input [N, C, H, W], grid [N, Ho, Wo, 2] holding (x, y) in [−1, 1], out [N, C, Ho, Wo].
 */
export interface GridSampleOptions {
  alignCorners: boolean;
  paddingMode: 'zeros' | 'border';
}

/** Pixel position of a normalised coordinate along an axis of `size` pixels, and d(position)/d(coordinate). */
export function sourceIndexReference(coord: number, size: number, opts: GridSampleOptions): { index: number; grad: number } {
  let index = opts.alignCorners ? ((coord + 1) / 2) * (size - 1) : ((coord + 1) * size - 1) / 2;
  let grad = opts.alignCorners ? (size - 1) / 2 : size / 2;
  if (opts.paddingMode === 'border') {
    // Borders count as outside for the gradient (torch's clip_coordinates_set_grad).
    if (index <= 0) [index, grad] = [0, 0];
    else if (index >= size - 1) [index, grad] = [size - 1, 0];
  }
  return { index, grad };
}

interface Corner {
  y: number;
  x: number;
  weight: number;
  /** ∂weight/∂ix and ∂weight/∂iy. */
  dWeight_dix: number;
  dWeight_diy: number;
}

function corners(ix: number, iy: number): Corner[] {
  const x0 = Math.floor(ix);
  const y0 = Math.floor(iy);
  const tx = ix - x0;
  const ty = iy - y0;
  return [
    { y: y0, x: x0, weight: (1 - tx) * (1 - ty), dWeight_dix: -(1 - ty), dWeight_diy: -(1 - tx) },
    { y: y0, x: x0 + 1, weight: tx * (1 - ty), dWeight_dix: 1 - ty, dWeight_diy: -tx },
    { y: y0 + 1, x: x0, weight: (1 - tx) * ty, dWeight_dix: -ty, dWeight_diy: 1 - tx },
    { y: y0 + 1, x: x0 + 1, weight: tx * ty, dWeight_dix: ty, dWeight_diy: tx },
  ];
}

/** Visits each output location with its corners (inside the image only) and the coordinate derivatives. */
function forEachLocation(
  inShape: readonly number[],
  gridShape: readonly number[],
  grid: Float64Array,
  opts: GridSampleOptions,
  visit: (n: number, location: number, inside: Corner[], dix_dgx: number, diy_dgy: number) => void,
): void {
  const [, , H, W] = inShape;
  const [N, Ho, Wo] = gridShape;
  for (let n = 0; n < N; n++) {
    for (let pixel = 0; pixel < Ho * Wo; pixel++) {
      const g = (n * Ho * Wo + pixel) * 2;
      const sx = sourceIndexReference(grid[g], W, opts);
      const sy = sourceIndexReference(grid[g + 1], H, opts);
      const inside = corners(sx.index, sy.index).filter((k) => k.y >= 0 && k.y < H && k.x >= 0 && k.x < W);
      visit(n, pixel, inside, sx.grad, sy.grad);
    }
  }
}

export function gridSampleReference(
  input: Float64Array,
  inShape: readonly number[],
  grid: Float64Array,
  gridShape: readonly number[],
  opts: GridSampleOptions,
): Float64Array {
  const [, C, H, W] = inShape;
  const [N, Ho, Wo] = gridShape;
  const out = new Float64Array(N * C * Ho * Wo);
  forEachLocation(inShape, gridShape, grid, opts, (n, pixel, inside) => {
    for (let c = 0; c < C; c++) {
      let v = 0;
      for (const k of inside) v += k.weight * input[((n * C + c) * H + k.y) * W + k.x];
      out[(n * C + c) * Ho * Wo + pixel] = v;
    }
  });
  return out;
}

/** Gradients of L = Σ dL_dout ⊙ gridSample(input, grid). */
export function gridSampleBackwardReference(
  input: Float64Array,
  inShape: readonly number[],
  grid: Float64Array,
  gridShape: readonly number[],
  dL_dout: Float64Array,
  opts: GridSampleOptions,
): { dInput: Float64Array; dGrid: Float64Array } {
  const [, C, H, W] = inShape;
  const [, Ho, Wo] = gridShape;
  const dInput = new Float64Array(input.length);
  const dGrid = new Float64Array(grid.length);
  forEachLocation(inShape, gridShape, grid, opts, (n, pixel, inside, dix_dgx, diy_dgy) => {
    let dL_dix = 0;
    let dL_diy = 0;
    for (let c = 0; c < C; c++) {
      const g = dL_dout[(n * C + c) * Ho * Wo + pixel];
      for (const k of inside) {
        const at = ((n * C + c) * H + k.y) * W + k.x;
        dInput[at] += k.weight * g;
        dL_dix += k.dWeight_dix * input[at] * g;
        dL_diy += k.dWeight_diy * input[at] * g;
      }
    }
    const gi = (n * Ho * Wo + pixel) * 2;
    dGrid[gi] = dL_dix * dix_dgx;
    dGrid[gi + 1] = dL_diy * diy_dgy;
  });
  return { dInput, dGrid };
}
