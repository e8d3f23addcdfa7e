/**
 * What a load costs inside a kernel on this adapter, against what an FMA costs: the figures that bound every
 * kernel here, and the arithmetic behind the matmul target (see `loadBoundMatmul`).
 *
 * Each kernel runs K iterations of a loop per thread and sums what it loads (so nothing is elided):
 *   storage f32        x[(k·8 + t) mod 2^16], four scalar loads per iteration (an address per lane)
 *   storage vec4       one vec4 load per iteration (an address per lane)
 *   workgroup f32      the same from workgroup memory
 *   workgroup, constant address (no loop)   mlp_infer's pattern: a fully unrolled body reading workgroup memory at
 *                      compile-time-constant addresses, which lavapipe turns into one scalar load and a broadcast
 * On lavapipe (8 invocations = the lanes of one SIMD register) every load whose address is not a compile-time
 * constant becomes 8 bounds-checked scalar loads, even when every lane's address is the same.
 */
import { defineKernel, runtime, Tensor } from '../src/index.ts';
import * as nd from '../src/index.ts';
import { timeGpu } from './timing.ts';

type LoadMode = 'storage-f32' | 'storage-vec4' | 'workgroup-f32' | 'workgroup-constant';

const WG = 64;
/** Constant-address loads per thread in the unrolled kernel. */
const UNROLLED = 1024;

const loadKernel = defineKernel<{ mode: LoadMode }>({
  name: 'bench_loads',
  variants: [{ mode: 'storage-f32' }, { mode: 'workgroup-constant' }],
  bindings: [
    { name: 'src', access: 'read' },
    { name: 'sink', access: 'rw' },
  ],
  params: [{ name: 'iterations', type: 'u32' }],
  workgroupSize: WG,
  wgsl: ({ mode }) => {
    const vec = mode === 'storage-vec4';
    const loop = (body: string): string => `for (var k = 0u; k < p.iterations; k++) {\n    let base = k * ${WG}u + lid;\n    ${body}\n  }`;
    const bodies: Record<LoadMode, string> = {
      'storage-f32': loop(['0u', '1u', '2u', '3u'].map((o, c) => `acc.${'xyzw'[c]} += src[(base * 4u + ${o}) & 65535u];`).join(' ')),
      'storage-vec4': loop('acc += src[base & 16383u];'),
      'workgroup-f32': loop(['0u', '1u', '2u', '3u'].map((o, c) => `acc.${'xyzw'[c]} += shared_f32[(base * 4u + ${o}) & 4095u];`).join(' ')),
      'workgroup-constant': Array.from({ length: UNROLLED / 4 }, (_, i) => `acc += vec4f(shared_f32[${4 * i}u], shared_f32[${4 * i + 1}u], shared_f32[${4 * i + 2}u], shared_f32[${4 * i + 3}u]);`).join('\n  '),
    };
    return /* wgsl */ `
// bench_loads (${mode}): sums what it loads; see bench/loads.ts.
struct Params { iterations: u32 }
@group(0) @binding(0) var<storage, read> src: array<${vec ? 'vec4f' : 'f32'}>;
@group(0) @binding(1) var<storage, read_write> sink: array<vec4f>;
@group(0) @binding(2) var<uniform> p: Params;
var<workgroup> shared_f32: array<f32, 4096>;

@compute @workgroup_size(${WG})
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(local_invocation_index) lid: u32) {
  ${mode.startsWith('workgroup') ? `for (var i = lid; i < 4096u; i += ${WG}u) { shared_f32[i] = f32(i); }\n  workgroupBarrier();` : ''}
  var acc = vec4f(0.0);
  ${bodies[mode]}
  sink[gid.x] = acc;
}
`;
  },
});

export interface LoadRow {
  mode: LoadMode;
  /** Floats loaded per second by the whole adapter (every lane counted). */
  gFloatsPerS: number;
  ms: number;
}

export async function benchLoads(threads = WG * 1024, iterations = 256): Promise<LoadRow[]> {
  const src = nd.rand([65536], new nd.Rng(1));
  const sink = Tensor.empty([threads * 4]);
  const rows: LoadRow[] = [];
  for (const mode of ['storage-f32', 'storage-vec4', 'workgroup-f32', 'workgroup-constant'] as const) {
    const floats = threads * (mode === 'workgroup-constant' ? UNROLLED : iterations * 4);
    const timing = await timeGpu(() => runtime().dispatch(loadKernel, { mode }, [src.view, sink.view], { iterations }, threads), 5);
    rows.push({ mode, gFloatsPerS: floats / (timing.ms * 1e6), ms: timing.ms });
  }
  src.dispose();
  sink.dispose();
  return rows;
}

/**
 * The most the register-blocked matmul (matmul-blocked.ts: ROWS rows × 4·VECS columns per thread, 8 lanes) can
 * reach when loads and FMAs cannot overlap, from the measured rates: per k and 8-lane workgroup it loads the A
 * value of each row (lane-uniform, but loaded per lane: 8·ROWS scalar loads) and each lane's B columns (8·VECS
 * vec4 loads), and does 8·ROWS·4·VECS FMAs. Returns GFLOP/s.
 */
export function loadBoundMatmul(scalarGFloatsPerS: number, vec4GFloatsPerS: number, ceilingGflops: number, rows = 12, vecs = 4): number {
  const fmas = 8 * rows * 4 * vecs;
  const ns = (8 * rows) / scalarGFloatsPerS + (8 * 4 * vecs) / vec4GFloatsPerS + fmas / (ceilingGflops / 2);
  return (2 * fmas) / ns;
}
