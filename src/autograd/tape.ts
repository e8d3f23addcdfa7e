/**
 * The tape: nodes recorded in creation order, walked in reverse by `backward` (reverse creation order is a valid
 * topological order, so no recursion: micrograd's topological sort, tfjs's backpropagateGradients).
 *
 * Gradients of intermediate tensors are freed as soon as their node has consumed them; only leaves that require a
 * gradient keep `.grad`. Nodes hold their saved residuals until `backward` runs or their scope closes.
 */
import { Tensor, shapeString, type GradNode } from '../tensor/tensor.ts';
import { currentScopeId, keep, onScopeExit } from '../tensor/scope.ts';

export type GradResult = Tensor | null | undefined | (() => Tensor | null);

export interface TapeNode extends GradNode {
  readonly name: string;
  /** Tensor inputs in argument order; backward returns one gradient per input. */
  readonly inputs: readonly Tensor[];
  readonly output: Tensor;
  readonly scopeId: number;
  /** Residuals the op owns (not inputs or outputs): disposed with the node. */
  readonly owned: Tensor[];
  backward(dOutput: Tensor): readonly GradResult[];
}

/** Marks a tensor whose graph was freed (its scope ended) so that backward can say so instead of doing nothing. */
export const FREED_GRAPH: GradNode = Object.freeze({ name: '<graph freed when its scope ended>' });

const tape: TapeNode[] = [];
let gradEnabled = true;

export function isGradEnabled(): boolean {
  return gradEnabled;
}

/** Runs fn without recording (evaluation, optimizer updates, backward itself). */
export function noGrad<T>(fn: () => T): T {
  const previous = gradEnabled;
  gradEnabled = false;
  try {
    return fn();
  } finally {
    gradEnabled = previous;
  }
}

export function enableGrad<T>(fn: () => T): T {
  const previous = gradEnabled;
  gradEnabled = true;
  try {
    return fn();
  } finally {
    gradEnabled = previous;
  }
}

export function recordNode(node: Omit<TapeNode, 'scopeId'>): void {
  const full: TapeNode = { ...node, scopeId: currentScopeId() };
  node.output.node = full;
  node.output.requiresGrad = true;
  tape.push(full);
}

export function tapeLength(): number {
  return tape.length;
}

function releaseNode(node: TapeNode): void {
  for (const t of node.owned) t.dispose();
  node.owned.length = 0;
  if (node.output.node === node) node.output.node = FREED_GRAPH;
}

onScopeExit((scopeId) => {
  // Drop the nodes of the closing scope: their tensors are about to be disposed.
  let write = 0;
  for (let read = 0; read < tape.length; read++) {
    const node = tape[read];
    if (node.scopeId === scopeId) releaseNode(node);
    else tape[write++] = node;
  }
  tape.length = write;
});

/** Drops the whole tape (e.g. after an evaluation that recorded by mistake). */
export function clearTape(): void {
  for (const node of tape) releaseNode(node);
  tape.length = 0;
}

type AddFn = (a: Tensor, b: Tensor) => Tensor;
type AccumulateFn = (target: Tensor, addend: Tensor) => void;
type FillFn = (shape: readonly number[], value: number) => Tensor;
type CopyFn = (t: Tensor) => Tensor;

/** The few kernels backward needs, injected by src/ops to keep this file free of kernel imports. */
export const gradKernels: { add?: AddFn; accumulate?: AccumulateFn; full?: FillFn; copy?: CopyFn } = {};

/**
 * Back-propagates from `loss` (a scalar, unless `dLoss` is given) into every leaf with `requiresGrad`,
 * accumulating into `leaf.grad`. The nodes walked are released afterwards.
 */
export function backward(loss: Tensor, dLoss?: Tensor): void {
  const { add, accumulate, full, copy } = gradKernels;
  if (!add || !accumulate || !full || !copy) throw new Error('autograd: kernels not registered (import nerfad ops)');
  if (loss.node === FREED_GRAPH) {
    throw new Error(`backward(): the graph of ${loss} was freed when its scope ended; call backward() inside the scope that computed it`);
  }
  if (!loss.requiresGrad) throw new Error(`backward(): ${loss} does not require grad (no parameter contributed to it)`);
  if (!dLoss && loss.size !== 1) {
    throw new Error(`backward(): loss must be a scalar, got ${shapeString(loss.shape)}; pass dLoss for a tensor`);
  }
  noGrad(() => {
    const grads = new Map<number, Tensor>();
    // Tensors whose storage a gradient may share must be copied before being stored twice.
    const stored = new Set<Tensor>();
    const seed = dLoss ? copy(dLoss) : full(loss.shape, 1);
    const store = (target: Tensor, g: Tensor): void => {
      if (stored.has(g)) g = copy(g);
      if (g.shape.length !== target.shape.length || g.shape.some((d, i) => d !== target.shape[i])) {
        throw new Error(`autograd: gradient ${shapeString(g.shape)} does not match ${target} from its op`);
      }
      if (target.node === null) {
        // A leaf.
        if (!target.requiresGrad) return g.dispose();
        if (target.grad) {
          accumulate(target.grad, g);
          g.dispose();
        } else {
          target.grad = keep(g);
          stored.add(g);
        }
        return;
      }
      const previous = grads.get(target.id);
      if (previous) {
        grads.set(target.id, add(previous, g));
        stored.delete(previous);
        previous.dispose();
        g.dispose();
        stored.add(grads.get(target.id)!);
      } else {
        grads.set(target.id, g);
        stored.add(g);
      }
    };

    if (loss.node === null) {
      store(loss, seed);
      return;
    }
    grads.set(loss.id, seed);
    stored.add(seed);
    let lastIndex = tape.lastIndexOf(loss.node as TapeNode);
    if (lastIndex < 0) throw new Error(`backward(): ${loss} was not produced by the current tape`);
    const walked: TapeNode[] = [];
    for (let i = lastIndex; i >= 0; i--) {
      const node = tape[i];
      const dOut = grads.get(node.output.id);
      if (!dOut) continue;
      grads.delete(node.output.id);
      const results = node.backward(dOut);
      if (results.length !== node.inputs.length) {
        throw new Error(`autograd: op '${node.name}' returned ${results.length} gradients for ${node.inputs.length} inputs`);
      }
      results.forEach((result, k) => {
        const input = node.inputs[k];
        if (!input.requiresGrad || result === null || result === undefined) return;
        const g = typeof result === 'function' ? result() : result;
        if (g) store(input, g === dOut ? copy(dOut) : g);
      });
      stored.delete(dOut);
      dOut.dispose();
      walked.push(node);
    }
    for (const g of grads.values()) g.dispose();
    // Release the walked nodes and remove them from the tape.
    const walkedSet = new Set(walked);
    for (const node of walked) releaseNode(node);
    let write = 0;
    for (let read = 0; read < tape.length; read++) if (!walkedSet.has(tape[read])) tape[write++] = tape[read];
    tape.length = write;
  });
}
