/**
 * Explicit tensor lifetimes. Every tensor created inside `scope(fn)` is disposed when `fn` returns, except the
 * tensors it returns (they move to the enclosing scope) and those passed to `keep`. GPU memory is never left to the
 * garbage collector (webgpu-torch's FinalizationRegistry attempt failed; tfjs's `tidy` is the model here).
 *
 * A training step is one synchronous scope: nothing inside it awaits the GPU.
 */
export interface Disposable {
  dispose(): void;
  readonly isDisposed: boolean;
}

interface ScopeFrame {
  readonly id: number;
  readonly tracked: Set<Disposable>;
}

const stack: ScopeFrame[] = [];
let nextScopeId = 1;
const exitListeners: ((scopeId: number) => void)[] = [];

/** The id of the innermost open scope, 0 outside any scope. */
export function currentScopeId(): number {
  return stack.length === 0 ? 0 : stack[stack.length - 1].id;
}

export function track<T extends Disposable>(t: T): T {
  if (stack.length > 0) stack[stack.length - 1].tracked.add(t);
  return t;
}

/** Exempts tensors from disposal by every open scope (for parameters, running state, gradients). */
export function keep<T extends Disposable>(t: T): T {
  for (const frame of stack) frame.tracked.delete(t);
  return t;
}

/** Called with a scope's id when it closes (the tape drops that scope's nodes). */
export function onScopeExit(listener: (scopeId: number) => void): void {
  exitListeners.push(listener);
}

function collectDisposables(value: unknown, into: Set<Disposable>, depth = 0): void {
  if (value === null || typeof value !== 'object' || depth > 4) return;
  if ('dispose' in value && 'isDisposed' in value) {
    into.add(value as Disposable);
    return;
  }
  const items = Array.isArray(value) ? value : value instanceof Map ? [...value.values()] : Object.values(value);
  for (const item of items) collectDisposables(item, into, depth + 1);
}

export function scope<T>(fn: () => T): T {
  const frame: ScopeFrame = { id: nextScopeId++, tracked: new Set() };
  stack.push(frame);
  let result: T;
  try {
    result = fn();
    if (result && typeof (result as { then?: unknown }).then === 'function') {
      throw new Error('scope(fn): fn must be synchronous (queue GPU work inside, await data outside the scope)');
    }
  } finally {
    stack.pop();
  }
  const returned = new Set<Disposable>();
  collectDisposables(result, returned);
  for (const listener of exitListeners) listener(frame.id);
  for (const t of frame.tracked) if (!returned.has(t)) t.dispose();
  const parent = stack[stack.length - 1];
  if (parent) for (const t of returned) if (frame.tracked.has(t)) parent.tracked.add(t);
  return result;
}
