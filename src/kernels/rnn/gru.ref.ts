/**
 * float64 reference of torch.nn.GRUCell, forward and backward, written from the equations:
 *   r = σ(W_ir x + b_ir + W_hr h + b_hr)
 *   z = σ(W_iz x + b_iz + W_hz h + b_hz)
 *   n = tanh(W_in x + b_in + r ⊙ (W_hn h + b_hn))
 *   h' = (1 − z) ⊙ n + z ⊙ h
 * Shapes: x [B, I], h [B, H], w_ih [3H, I], w_hh [3H, H], b_ih, b_hh [3H] (rows r, z, n in that order).
 */
const sigmoid = (v: number): number => 1 / (1 + Math.exp(-v));

export interface GruDims {
  batch: number;
  input: number;
  hidden: number;
}

/** Row `row` of W (K columns) times vector v (offset vOff), plus b[row] when given. */
function affineRow(w: Float64Array, row: number, K: number, v: Float64Array, vOff: number, b: Float64Array | null): number {
  let s = b ? b[row] : 0;
  for (let k = 0; k < K; k++) s += w[row * K + k] * v[vOff + k];
  return s;
}

interface GateValues {
  r: number;
  z: number;
  n: number;
  /** W_hn h + b_hn, which r multiplies. */
  hn: number;
}

function gates(
  x: Float64Array,
  h: Float64Array,
  wIh: Float64Array,
  wHh: Float64Array,
  bIh: Float64Array | null,
  bHh: Float64Array | null,
  d: GruDims,
  b: number,
  j: number,
): GateValues {
  const { input: I, hidden: H } = d;
  const ir = affineRow(wIh, j, I, x, b * I, bIh);
  const iz = affineRow(wIh, H + j, I, x, b * I, bIh);
  const iN = affineRow(wIh, 2 * H + j, I, x, b * I, bIh);
  const hr = affineRow(wHh, j, H, h, b * H, bHh);
  const hz = affineRow(wHh, H + j, H, h, b * H, bHh);
  const hn = affineRow(wHh, 2 * H + j, H, h, b * H, bHh);
  const r = sigmoid(ir + hr);
  const z = sigmoid(iz + hz);
  return { r, z, n: Math.tanh(iN + r * hn), hn };
}

export function gruCellReference(
  x: Float64Array,
  h: Float64Array,
  wIh: Float64Array,
  wHh: Float64Array,
  bIh: Float64Array | null,
  bHh: Float64Array | null,
  d: GruDims,
): Float64Array {
  const out = new Float64Array(d.batch * d.hidden);
  for (let b = 0; b < d.batch; b++) {
    for (let j = 0; j < d.hidden; j++) {
      const { z, n } = gates(x, h, wIh, wHh, bIh, bHh, d, b, j);
      out[b * d.hidden + j] = (1 - z) * n + z * h[b * d.hidden + j];
    }
  }
  return out;
}

export interface GruGrads {
  dx: Float64Array;
  dh: Float64Array;
  dwIh: Float64Array;
  dwHh: Float64Array;
  dbIh: Float64Array;
  dbHh: Float64Array;
}

/** Gradients of L = Σ dL_dhNew ⊙ gruCell(...) by the chain rule through each gate's pre-activation. */
export function gruCellBackwardReference(
  x: Float64Array,
  h: Float64Array,
  wIh: Float64Array,
  wHh: Float64Array,
  bIh: Float64Array | null,
  bHh: Float64Array | null,
  d: GruDims,
  dL_dhNew: Float64Array,
): GruGrads {
  const { batch: B, input: I, hidden: H } = d;
  const grads: GruGrads = {
    dx: new Float64Array(B * I),
    dh: new Float64Array(B * H),
    dwIh: new Float64Array(3 * H * I),
    dwHh: new Float64Array(3 * H * H),
    dbIh: new Float64Array(3 * H),
    dbHh: new Float64Array(3 * H),
  };
  for (let b = 0; b < B; b++) {
    for (let j = 0; j < H; j++) {
      const { r, z, n, hn } = gates(x, h, wIh, wHh, bIh, bHh, d, b, j);
      const g = dL_dhNew[b * H + j];
      grads.dh[b * H + j] += g * z;
      const dPreN = g * (1 - z) * (1 - n * n);
      const dPreZ = g * (h[b * H + j] - n) * z * (1 - z);
      const dPreR = dPreN * hn * r * (1 - r);
      // Pre-activation gradients of the input-side rows (r, z, n) and hidden-side rows (r, z, n: scaled by r).
      const dInputRows = [dPreR, dPreZ, dPreN];
      const dHiddenRows = [dPreR, dPreZ, dPreN * r];
      for (let gate = 0; gate < 3; gate++) {
        const row = gate * H + j;
        grads.dbIh[row] += dInputRows[gate];
        grads.dbHh[row] += dHiddenRows[gate];
        for (let k = 0; k < I; k++) {
          grads.dwIh[row * I + k] += dInputRows[gate] * x[b * I + k];
          grads.dx[b * I + k] += dInputRows[gate] * wIh[row * I + k];
        }
        for (let k = 0; k < H; k++) {
          grads.dwHh[row * H + k] += dHiddenRows[gate] * h[b * H + k];
          grads.dh[b * H + k] += dHiddenRows[gate] * wHh[row * H + k];
        }
      }
    }
  }
  return grads;
}
