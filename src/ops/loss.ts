/**
 * Losses (torch.nn.functional semantics): mseLoss, l1Loss, bceLoss, bceWithLogitsLoss. One fused kernel computes
 * the elementwise terms (src/kernels/loss/pointwise-loss.ts), its backward gives both partials in one pass each,
 * and the reduction is the ordinary sum/mean op. pred and target must have the same shape; both may require grad.
 */
import { defineOp } from '../autograd/op.ts';
import { isGradEnabled } from '../autograd/tape.ts';
import { runtime } from '../kernels/runtime/runtime.ts';
import { pointwiseLossBackward, pointwiseLossForward, type PointwiseLossName } from '../kernels/loss/pointwise-loss.ts';
import { Tensor, shapeString } from '../tensor/tensor.ts';
import { mean, sum } from './reduce.ts';

export type Reduction = 'mean' | 'sum' | 'none';

const makePointwiseLoss = (loss: PointwiseLossName) =>
  defineOp({
    name: `${loss}_terms`,
    forward(ctx, pred: Tensor, target: Tensor) {
      const out = Tensor.empty(pred.shape);
      if (pred.size > 0) runtime().dispatch(pointwiseLossForward, { loss }, [pred.view, target.view, out.view], { n: pred.size }, pred.size);
      ctx.save(pred, target);
      return out;
    },
    backward(ctx, dOut) {
      const [pred, target] = ctx.saved;
      const partial = (wrt: 'pred' | 'target') => (): Tensor => {
        const grad = Tensor.empty(pred.shape);
        if (pred.size > 0) {
          runtime().dispatch(pointwiseLossBackward, { loss, wrt }, [pred.view, target.view, dOut.view, grad.view], { n: pred.size }, pred.size);
        }
        return grad;
      };
      return [partial('pred'), partial('target')];
    },
  });

const termOps: Record<PointwiseLossName, (pred: Tensor, target: Tensor) => Tensor> = {
  mse: makePointwiseLoss('mse'),
  l1: makePointwiseLoss('l1'),
  bce: makePointwiseLoss('bce'),
  bce_logits: makePointwiseLoss('bce_logits'),
};

function lossOf(op: string, loss: PointwiseLossName, pred: Tensor, target: Tensor, reduction: Reduction): Tensor {
  for (const [t, what] of [[pred, 'input'], [target, 'target']] as const) {
    if (t.dtype !== 'f32') throw new Error(`${op}: ${what} must be f32, got ${t}`);
  }
  if (pred.rank !== target.rank || pred.shape.some((d, k) => d !== target.shape[k])) {
    throw new Error(`${op}: input ${shapeString(pred.shape)} and target ${shapeString(target.shape)} must have the same shape`);
  }
  if (reduction !== 'mean' && reduction !== 'sum' && reduction !== 'none') {
    throw new Error(`${op}: reduction must be 'mean', 'sum' or 'none', got '${String(reduction)}'`);
  }
  const terms = termOps[loss](pred, target);
  if (reduction === 'none') return terms;
  const reduced = reduction === 'mean' ? mean(terms) : sum(terms);
  // Without a tape nothing refers to the terms any more; with one, the reduction's node holds them until backward.
  if (!isGradEnabled() || !terms.requiresGrad) terms.dispose();
  return reduced;
}

/** Mean (or sum, or elementwise) squared error (pred − target)². */
export const mseLoss = (pred: Tensor, target: Tensor, reduction: Reduction = 'mean'): Tensor => lossOf('mseLoss', 'mse', pred, target, reduction);
/** Mean (or sum, or elementwise) absolute error |pred − target|. */
export const l1Loss = (pred: Tensor, target: Tensor, reduction: Reduction = 'mean'): Tensor => lossOf('l1Loss', 'l1', pred, target, reduction);
/** Binary cross-entropy of probabilities in [0, 1]; each log is clamped at −100 like torch. */
export const bceLoss = (prob: Tensor, target: Tensor, reduction: Reduction = 'mean'): Tensor => lossOf('bceLoss', 'bce', prob, target, reduction);
/** Binary cross-entropy of sigmoid(logits), in the stable form max(x, 0) − x·t + log(1 + e^−|x|). */
export const bceWithLogitsLoss = (logits: Tensor, target: Tensor, reduction: Reduction = 'mean'): Tensor =>
  lossOf('bceWithLogitsLoss', 'bce_logits', logits, target, reduction);
