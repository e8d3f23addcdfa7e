/**
 * `defineOp`: an op's forward (which queues kernels) and backward (which returns one gradient per tensor input,
 * each either a tensor or a thunk: thunks run only for inputs that require a gradient, so unneeded gradients
 * are never computed).
 *
 *   export const mul = defineOp({
 *     name: 'mul',
 *     forward: (ctx, a: Tensor, b: Tensor) => { ctx.save(a, b); return mulKernel(a, b); },
 *     backward: (ctx, dy) => { const [a, b] = ctx.saved; return [() => mul(dy, b), () => mul(dy, a)]; },
 *   });
 *
 * Arguments that are not tensors are attributes (axes, flags); the tensor arguments are the op's inputs.
 */
import { Tensor } from '../tensor/tensor.ts';
import { keep } from '../tensor/scope.ts';
import { isGradEnabled, recordNode, type GradResult } from './tape.ts';

export interface OpContext {
  /** Tensors needed by backward that are inputs or the output (kept alive by their scope). */
  save(...tensors: Tensor[]): void;
  /** Temporaries needed by backward that nobody else holds: disposed when the node is released. */
  own(...tensors: Tensor[]): void;
  readonly saved: Tensor[];
  readonly owned: Tensor[];
  /** needsGrad[i] is true when tensor input i requires a gradient. */
  readonly needsGrad: readonly boolean[];
  /** True while recording for autograd (false under noGrad or when no input requires a gradient). */
  readonly recording: boolean;
  /** The non-tensor arguments (attributes) in argument order. */
  readonly attrs: readonly unknown[];
  /** The forward's output (set after forward returns). */
  output: Tensor | null;
}

export interface OpDefinition<A extends unknown[]> {
  name: string;
  forward(ctx: OpContext, ...args: A): Tensor;
  backward?(ctx: OpContext, dOutput: Tensor): readonly GradResult[];
}

export function defineOp<A extends unknown[]>(def: OpDefinition<A>): (...args: A) => Tensor {
  const op = (...args: A): Tensor => {
    const inputs = args.filter((a): a is Tensor => a instanceof Tensor);
    const needsGrad = inputs.map((t) => t.requiresGrad);
    const recording = isGradEnabled() && needsGrad.some(Boolean) && def.backward !== undefined;
    const saved: Tensor[] = [];
    const owned: Tensor[] = [];
    const ctx: OpContext = {
      save: (...ts) => {
        if (recording) saved.push(...ts);
      },
      own: (...ts) => {
        if (recording) owned.push(...ts);
        else for (const t of ts) t.dispose();
      },
      saved,
      owned,
      attrs: args.filter((a) => !(a instanceof Tensor)),
      needsGrad,
      recording,
      output: null,
    };
    const output = def.forward(ctx, ...args);
    if (recording) {
      ctx.output = output;
      // Owned residuals outlive the op's scope frame until backward or the scope's end releases the node.
      for (const t of owned) keep(t);
      recordNode({ name: def.name, inputs, output, owned, backward: (dy) => def.backward!(ctx, dy) });
    } else if (isGradEnabled() && needsGrad.some(Boolean) && !def.backward) {
      throw new Error(`op '${def.name}' has no backward, but an input requires a gradient`);
    }
    return output;
  };
  Object.defineProperty(op, 'name', { value: def.name });
  return op;
}

