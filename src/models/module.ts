/**
 * `Module`: the building block of models, as in PyTorch. A module registers its parameters (trainable tensors),
 * buffers (saved state that is not trained, e.g. running statistics) and child modules under names; the dotted
 * paths (`encoder.0.weight`) name them in `namedParameters()` and in checkpoints (torch's state_dict names, so
 * weights exported from torch with the same structure load directly).
 *
 *   class Head extends Module {
 *     readonly body = this.addModule('body', new MLP([32, 64, 64, 4], { activation: 'relu' }));
 *     forward(x: Tensor): Tensor { return this.body.forward(x); }
 *   }
 *
 * Registration is explicit (`addParameter`, `addBuffer`, `addModule`); there is no attribute magic. Registered
 * tensors are `keep`-ed, so building a module inside a `scope` does not free its weights; `dispose()` frees them.
 * `forward` records on the tape like any op and must run inside the training step's `scope` (its temporaries are
 * the scope's to free). `train()`/`eval()` set `training` on the whole tree (modules whose behaviour differs, e.g.
 * dropout, read it).
 */
import { keep } from '../tensor/scope.ts';
import { Tensor } from '../tensor/tensor.ts';

const NAME = /^[A-Za-z0-9_]+$/;

/** Any module, whatever its forward signature (children of different kinds live in one tree). */
export type AnyModule = Module<any[], any>;

export abstract class Module<In extends unknown[] = [Tensor], Out = Tensor> {
  /** True in training mode (the default), false after `eval()`. */
  training = true;
  private readonly ownParameters = new Map<string, Tensor>();
  private readonly ownBuffers = new Map<string, Tensor>();
  private readonly childModules = new Map<string, AnyModule>();

  abstract forward(...inputs: In): Out;

  /** The class name and a short description of the configuration (used by `toString`). */
  protected describe(): string {
    return this.constructor.name;
  }

  private checkName(kind: string, name: string): void {
    if (!NAME.test(name)) throw new Error(`${this.describe()}: ${kind} name '${name}' must be letters, digits or _`);
    if (this.ownParameters.has(name) || this.ownBuffers.has(name) || this.childModules.has(name)) {
      throw new Error(`${this.describe()}: '${name}' is already registered`);
    }
  }

  /** Registers a trainable tensor (sets requiresGrad, keeps it out of scopes). */
  protected addParameter(name: string, t: Tensor): Tensor {
    this.checkName('parameter', name);
    if (t.dtype !== 'f32') throw new Error(`${this.describe()}: parameter '${name}' must be f32, got ${t}`);
    keep(t);
    t.requiresGrad = true;
    t.name ??= name;
    this.ownParameters.set(name, t);
    return t;
  }

  /** Registers a non-trainable tensor saved with the module (running statistics, fixed tables). */
  protected addBuffer(name: string, t: Tensor): Tensor {
    this.checkName('buffer', name);
    keep(t);
    t.name ??= name;
    this.ownBuffers.set(name, t);
    return t;
  }

  protected addModule<M extends AnyModule>(name: string, module: M): M {
    this.checkName('module', name);
    if (!(module instanceof Module)) throw new Error(`${this.describe()}: '${name}' is not a Module`);
    this.childModules.set(name, module);
    return module;
  }

  /** Direct children in registration order. */
  namedChildren(): [string, AnyModule][] {
    return [...this.childModules];
  }

  children(): AnyModule[] {
    return [...this.childModules.values()];
  }

  /** This module and all descendants, depth first, with dotted paths ('' for this one). */
  namedModules(prefix = ''): [string, AnyModule][] {
    const out: [string, AnyModule][] = [[prefix, this]];
    for (const [name, child] of this.childModules) out.push(...child.namedModules(prefix ? `${prefix}.${name}` : name));
    return out;
  }

  /** Every parameter with its dotted path, each tensor once (the first path wins when a module is shared). */
  namedParameters(prefix = ''): [string, Tensor][] {
    return this.collect(prefix, (m) => m.ownParameters);
  }

  parameters(): Tensor[] {
    return this.namedParameters().map(([, t]) => t);
  }

  namedBuffers(prefix = ''): [string, Tensor][] {
    return this.collect(prefix, (m) => m.ownBuffers);
  }

  /** Parameters then buffers: everything a checkpoint saves for this module. */
  stateEntries(prefix = ''): [string, Tensor][] {
    return [...this.namedParameters(prefix), ...this.namedBuffers(prefix)];
  }

  private collect(prefix: string, pick: (m: AnyModule) => Map<string, Tensor>): [string, Tensor][] {
    const seen = new Set<Tensor>();
    const out: [string, Tensor][] = [];
    for (const [path, module] of this.namedModules(prefix)) {
      for (const [name, t] of pick(module)) {
        if (seen.has(t)) continue;
        seen.add(t);
        out.push([path ? `${path}.${name}` : name, t]);
      }
    }
    return out;
  }

  /** Number of trainable scalars. */
  parameterCount(): number {
    return this.parameters().reduce((n, t) => n + t.size, 0);
  }

  train(mode = true): this {
    for (const [, m] of this.namedModules()) m.training = mode;
    return this;
  }

  eval(): this {
    return this.train(false);
  }

  /** Freezes (false) or unfreezes (true) every parameter: frozen ones receive no gradient. */
  requiresGrad(flag: boolean): this {
    for (const p of this.parameters()) p.requiresGrad = flag;
    return this;
  }

  /** Frees every parameter and buffer of the tree. The module is unusable afterwards. */
  dispose(): void {
    for (const [, m] of this.namedModules()) {
      for (const t of m.ownParameters.values()) t.dispose();
      for (const t of m.ownBuffers.values()) t.dispose();
    }
  }

  get isDisposed(): boolean {
    return this.stateEntries().some(([, t]) => t.isDisposed);
  }

  /** A tree like torch's module repr. */
  toString(): string {
    const lines = [this.describe()];
    for (const [name, child] of this.childModules) {
      const text = child.toString().split('\n');
      lines.push(`  (${name}): ${text[0]}`, ...text.slice(1).map((l) => `  ${l}`));
    }
    return lines.join('\n');
  }
}

/** Runs its children in order, each on the previous one's output. Children are named '0', '1', ... */
export class Sequential extends Module<[Tensor], Tensor> {
  readonly layers: readonly Module<[Tensor], Tensor>[];

  constructor(...layers: Module<[Tensor], Tensor>[]) {
    super();
    layers.forEach((layer, k) => this.addModule(String(k), layer));
    this.layers = layers;
  }

  forward(x: Tensor): Tensor {
    let y = x;
    for (const layer of this.layers) y = layer.forward(y);
    return y;
  }

  get length(): number {
    return this.layers.length;
  }
}
