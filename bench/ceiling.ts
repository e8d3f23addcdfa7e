/**
 * The adapter's own FP32 ceiling: a WGSL kernel of nothing but vec4 FMAs on 8 independent accumulators per thread
 * (no loads in the loop, so only the arithmetic and the adapter's scheduling count). No WGSL kernel on this adapter
 * does useful work faster; matmul is judged against this figure measured in the same run.
 */
import { defineKernel, runtime, Tensor } from '../src/index.ts';
import { timeGpu, type Timing } from './timing.ts';

const WORKGROUP = 64;

export type CeilingForm = 'fma' | 'mul-add';

export const fmaCeilingKernel = defineKernel<{ form: CeilingForm }>({
  name: 'bench_fma_ceiling',
  variants: [{ form: 'fma' }, { form: 'mul-add' }],
  bindings: [{ name: 'sink', access: 'rw' }],
  params: [{ name: 'iterations', type: 'u32' }],
  workgroupSize: WORKGROUP,
  wgsl: ({ form }) => /* wgsl */ `
// bench_fma_ceiling (${form}): per thread, iterations × 8 independent vec4 FMAs; the sum is stored so nothing is
// elided. 'fma' uses fma(); 'mul-add' writes x * m + d (whether that becomes one instruction is the compiler's choice).
struct Params { iterations: u32 }
@group(0) @binding(0) var<storage, read_write> sink: array<vec4f>;
@group(0) @binding(1) var<uniform> p: Params;

@compute @workgroup_size(${WORKGROUP})
fn main(@builtin(global_invocation_id) gid: vec3u) {
  let s = f32(gid.x) * 1e-9;
  var x0 = vec4f(s); var x1 = vec4f(s + 1.0); var x2 = vec4f(s + 2.0); var x3 = vec4f(s + 3.0);
  var x4 = vec4f(s + 4.0); var x5 = vec4f(s + 5.0); var x6 = vec4f(s + 6.0); var x7 = vec4f(s + 7.0);
  let m = vec4f(0.9999);
  let d = vec4f(1e-7);
  for (var i = 0u; i < p.iterations; i++) {
    ${[0, 1, 2, 3, 4, 5, 6, 7].map((i) => (form === 'fma' ? `x${i} = fma(x${i}, m, d);` : `x${i} = x${i} * m + d;`)).join(' ')}
  }
  sink[gid.x] = x0 + x1 + x2 + x3 + x4 + x5 + x6 + x7;
}
`,
});

export interface CeilingResult {
  gflops: number;
  /** GFLOP per CPU-second of this process (see `Timing.cpuMs`). */
  cpuGflops: number;
  timing: Timing;
}

/** Runs the ceiling kernel over `threads` threads (enough to fill any adapter) and returns GFLOP/s (median). */
export async function measureCeiling(form: CeilingForm = 'fma', reps = 7, threads = WORKGROUP * 512, iterations = 2048): Promise<CeilingResult> {
  const sink = Tensor.empty([threads * 4]);
  const flops = threads * iterations * 8 * 4 * 2;
  const timing = await timeGpu(() => runtime().dispatch(fmaCeilingKernel, { form }, [sink.view], { iterations }, threads), reps);
  sink.dispose();
  return { gflops: flops / (timing.ms * 1e6), cpuGflops: flops / (timing.cpuMs * 1e6), timing };
}
