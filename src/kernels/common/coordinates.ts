/**
 * WGSL that walks the coordinates of a flat element index through a shape of rank ≤ maxRank, innermost dimension
 * first: the shared core of every strided kernel (strided copies, broadcasting binaries, windows, gathers).
 *
 * The walk is unrolled over the dimensions, each step guarded by `k < rank` (a uniform branch), and reads the
 * dims as scalar Params members (`p.dim0`, …). The earlier form, a loop over `array<u32, 6>` copies of the
 * Params indexed by the loop counter, puts the arrays in per-lane private memory on lavapipe: a narrow of
 * [2^20, 16] → [2^20, 15] took 169 ms that way and 43 ms this way (the bench's strided-copy row).
 * The outermost coordinate needs no division: it is what remains of the index.
 */

/**
 * Statements that declare nothing outside their blocks: for k = maxRank−1 … 0 (while k < rank), `c` is the k-th
 * coordinate of `index` and `body(k, 'c')` runs with it. `index` must be a u32 expression below the shape's size.
 */
export function walkCoordinates(maxRank: number, index: string, body: (k: number, coord: string) => string, dim = (k: number) => `p.dim${k}`, rank = 'p.rank'): string {
  const steps: string[] = [`var rest = ${index};`];
  for (let k = maxRank - 1; k >= 0; k--) {
    const coord = k === 0 ? 'let c = rest;' : `let c = rest % ${dim(k)}; rest = rest / ${dim(k)};`;
    steps.push(`if (${k}u < ${rank}) { ${coord} ${body(k, 'c')} }`);
  }
  return steps.join('\n  ');
}
