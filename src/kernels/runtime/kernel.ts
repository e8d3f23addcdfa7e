/**
 * How a kernel is declared, and the cache that turns declarations into pipelines.
 *
 * A kernel file exports one `defineKernel({...})` (or a small family). Its `wgsl(consts)` returns the complete
 * shader text, bindings included, so the kernel reads on its own. The binding order is fixed project-wide:
 * storage buffers in the order of `bindings` (inputs, then outputs) at @binding(0..n-1), then the scalar
 * parameters as one uniform struct `Params` at @binding(n), bound with a dynamic offset into the runtime's
 * uniform ring. Sizes travel in `Params`, so one pipeline serves every shape; only structural choices
 * (`consts`: an activation, a vector width) make a new pipeline.
 */

export type ScalarType = 'u32' | 'i32' | 'f32';

export interface BindingSpec {
  name: string;
  /** 'read' → var<storage, read>; 'rw' → var<storage, read_write> (also for atomics). */
  access: 'read' | 'rw';
}

export interface ParamSpec {
  name: string;
  type: ScalarType;
}

export interface KernelSpec<C = void> {
  name: string;
  bindings: readonly BindingSpec[];
  params: readonly ParamSpec[];
  /** Threads per workgroup along x (y and z are 1 unless `workgroupSize` says otherwise in the WGSL). */
  workgroupSize: number | ((consts: C) => number);
  wgsl: (consts: C) => string;
  /**
   * Representative compile-time constants, one per structural variant worth checking: the binding-table test
   * generates each variant's WGSL and checks its @binding lines and Params struct against this declaration.
   * Omit for kernels without constants.
   */
  variants?: readonly C[];
}

export interface Kernel<C = void> extends KernelSpec<C> {
  readonly kind: 'kernel';
}

export function defineKernel<C = void>(spec: KernelSpec<C>): Kernel<C> {
  const paramNames = new Set<string>();
  for (const p of spec.params) {
    if (paramNames.has(p.name)) throw new Error(`kernel ${spec.name}: parameter ${p.name} declared twice`);
    paramNames.add(p.name);
  }
  if (spec.params.length > 64) throw new Error(`kernel ${spec.name}: at most 64 scalar parameters fit a uniform slot`);
  return { ...spec, kind: 'kernel' };
}

export function workgroupSizeOf<C>(kernel: Kernel<C>, consts: C): number {
  return typeof kernel.workgroupSize === 'function' ? kernel.workgroupSize(consts) : kernel.workgroupSize;
}

export interface CompiledKernel {
  readonly key: string;
  readonly kernelName: string;
  readonly pipeline: GPUComputePipeline;
  readonly layout: GPUBindGroupLayout;
  readonly bindingCount: number;
  readonly params: readonly ParamSpec[];
  readonly workgroupSize: number;
  readonly source: string;
}

/** Formats WGSL compilation messages with the kernel name, the line and the offending source line. */
export function formatCompilationMessages(kernelName: string, source: string, messages: readonly GPUCompilationMessage[]): string {
  const lines = source.split('\n');
  return messages
    .map((m) => {
      const where = m.lineNum > 0 ? `line ${m.lineNum}:${m.linePos}` : 'unknown line';
      const text = m.lineNum > 0 ? `\n    ${lines[m.lineNum - 1]?.trim() ?? ''}` : '';
      return `WGSL ${m.type} in kernel '${kernelName}' at ${where}: ${m.message}${text}`;
    })
    .join('\n');
}

export class PipelineCache {
  private readonly compiled = new Map<string, CompiledKernel>();
  /** Shader compilation checks still running; the runtime awaits them and throws their errors at the next read. */
  readonly pendingChecks: Promise<string | null>[] = [];
  compileCount = 0;

  constructor(private readonly device: GPUDevice) {}

  get<C>(kernel: Kernel<C>, consts: C): CompiledKernel {
    const key = consts === undefined ? kernel.name : `${kernel.name}:${JSON.stringify(consts)}`;
    const hit = this.compiled.get(key);
    if (hit) return hit;

    const source = kernel.wgsl(consts);
    const module = this.device.createShaderModule({ code: source, label: key });
    this.pendingChecks.push(
      module.getCompilationInfo().then((info) => {
        const errors = info.messages.filter((m) => m.type === 'error');
        return errors.length > 0 ? formatCompilationMessages(key, source, errors) : null;
      }),
    );
    const entries: GPUBindGroupLayoutEntry[] = kernel.bindings.map((b, i) => ({
      binding: i,
      visibility: GPUShaderStage.COMPUTE,
      buffer: { type: b.access === 'read' ? 'read-only-storage' : 'storage' },
    }));
    entries.push({
      binding: kernel.bindings.length,
      visibility: GPUShaderStage.COMPUTE,
      buffer: { type: 'uniform', hasDynamicOffset: true },
    });
    const layout = this.device.createBindGroupLayout({ entries, label: key });
    const pipeline = this.device.createComputePipeline({
      layout: this.device.createPipelineLayout({ bindGroupLayouts: [layout] }),
      compute: { module, entryPoint: 'main' },
      label: key,
    });
    const result: CompiledKernel = {
      key,
      kernelName: kernel.name,
      pipeline,
      layout,
      bindingCount: kernel.bindings.length,
      params: kernel.params,
      workgroupSize: workgroupSizeOf(kernel, consts),
      source,
    };
    this.compiled.set(key, result);
    this.compileCount += 1;
    return result;
  }
}
