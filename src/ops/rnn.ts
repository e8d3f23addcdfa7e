/**
 * The GRU cell (torch.nn.GRUCell semantics): two projections by the matmul kernel (bias fused, W read transposed),
 * then one fused gate kernel (src/kernels/rnn/gru-gates.ts) instead of slicing the gate columns apart and
 * chaining ~10 elementwise ops.
 */
import { defineOp } from '../autograd/op.ts';
import { runtime } from '../kernels/runtime/runtime.ts';
import { gruGatesBackwardKernel, gruGatesKernel } from '../kernels/rnn/gru-gates.ts';
import { Tensor, shapeString } from '../tensor/tensor.ts';
import { matmul } from './matmul.ts';

/** h' from the projections gi = x·W_ihᵀ + b_ih, gh = h·W_hhᵀ + b_hh ([B, 3H] each) and h [B, H]. */
const gruGatesOp = defineOp({
  name: 'gruGates',
  forward(ctx, gi: Tensor, gh: Tensor, h: Tensor) {
    const [batch, hidden] = h.shape;
    const hNew = Tensor.empty([batch, hidden]);
    ctx.save(gi, gh, h);
    if (hNew.size === 0) return hNew;
    runtime().dispatch(gruGatesKernel, undefined, [gi.view, gh.view, h.view, hNew.view], { batch, hidden }, hNew.size);
    return hNew;
  },
  backward(ctx, dL_dhNew) {
    const [gi, gh, h] = ctx.saved;
    const [batch, hidden] = h.shape;
    // One kernel writes all three gradients; the ones nobody needs are freed at once.
    const dGi = Tensor.empty(gi.shape);
    const dGh = Tensor.empty(gh.shape);
    const dH = Tensor.empty(h.shape);
    if (dH.size > 0) {
      runtime().dispatch(
        gruGatesBackwardKernel,
        undefined,
        [gi.view, gh.view, h.view, dL_dhNew.view, dGi.view, dGh.view, dH.view],
        { batch, hidden },
        dH.size,
      );
    }
    return [dGi, dGh, dH].map((g, k) => {
      if (ctx.needsGrad[k]) return g;
      g.dispose();
      return null;
    });
  },
});

/**
 * torch.nn.GRUCell: x [B, I], h [B, H], wIh [3H, I], wHh [3H, H], optional bIh, bHh [3H] (gate rows r, z, n) → h' [B, H].
 */
export function gruCell(x: Tensor, h: Tensor, wIh: Tensor, wHh: Tensor, bIh?: Tensor, bHh?: Tensor): Tensor {
  const all = [x, h, wIh, wHh, ...(bIh ? [bIh] : []), ...(bHh ? [bHh] : [])];
  for (const t of all) if (t.dtype !== 'f32') throw new Error(`gruCell: expected f32 tensors, got ${t}`);
  const shapes = `x ${shapeString(x.shape)}, h ${shapeString(h.shape)}, wIh ${shapeString(wIh.shape)}, wHh ${shapeString(wHh.shape)}`;
  if (x.rank !== 2 || h.rank !== 2 || wIh.rank !== 2 || wHh.rank !== 2) {
    throw new Error(`gruCell: x, h, wIh and wHh must be 2-D, got ${shapes}`);
  }
  const [batch, inputSize] = x.shape;
  const hidden = h.shape[1];
  if (h.shape[0] !== batch) throw new Error(`gruCell: x and h batch sizes differ: ${shapes}`);
  if (wIh.shape[0] !== 3 * hidden || wIh.shape[1] !== inputSize) {
    throw new Error(`gruCell: wIh must be [3H, I] = [${3 * hidden}, ${inputSize}], got ${shapes}`);
  }
  if (wHh.shape[0] !== 3 * hidden || wHh.shape[1] !== hidden) {
    throw new Error(`gruCell: wHh must be [3H, H] = [${3 * hidden}, ${hidden}], got ${shapes}`);
  }
  for (const [name, b] of [['bIh', bIh], ['bHh', bHh]] as const) {
    if (b && (b.rank !== 1 || b.size !== 3 * hidden)) {
      throw new Error(`gruCell: ${name} must be [3H] = [${3 * hidden}], got ${shapeString(b.shape)}`);
    }
  }
  const gi = matmul(x, wIh, { transB: true, bias: bIh });
  const gh = matmul(h, wHh, { transB: true, bias: bHh });
  return gruGatesOp(gi, gh, h);
}
