/**
 * Elementwise bandwidth in GB/s (bytes read + written per second) over 16 M f32, against a plain buffer copy.
 * The scalar rows dispatch the one-element-per-thread kernels directly (what the ops use when the length is not a
 * multiple of 4); the vec4 rows go through the ops (what `nd.add`, `nd.sigmoid` use for these contiguous tensors).
 */
import * as nd from '../src/index.ts';
import { runtime } from '../src/index.ts';
import { binaryForward } from '../src/kernels/elementwise/binary.ts';
import { MAX_RANK, unaryForward } from '../src/kernels/elementwise/unary.ts';
import { timeGpu } from './timing.ts';

export interface BandwidthRow {
  name: string;
  gbPerS: number;
  /** Bytes per CPU-second of this process (load-robust; see `Timing.cpuMs`). */
  gbPerCpuS: number;
  ms: number;
}

function flatParams(n: number, names: string[]): Record<string, number> {
  const params: Record<string, number> = { n, rank: 1, x_offset: 0, a: 0, b: 0 };
  for (let k = 0; k < MAX_RANK; k++) {
    params[`dim${k}`] = k === 0 ? n : 1;
    for (const name of names) params[`${name}${k}`] = k === 0 ? 1 : 0;
  }
  return params;
}

export async function benchElementwise(n = 1 << 24, reps = 7): Promise<BandwidthRow[]> {
  const rt = runtime();
  const rng = new nd.Rng(3);
  const a = nd.rand([n], rng);
  const b = nd.rand([n], rng);
  const y = nd.Tensor.empty([n]);
  const bytes4 = n * 4;
  const rows: BandwidthRow[] = [];
  const add = async (name: string, bytes: number, enqueue: () => void): Promise<void> => {
    const timing = await timeGpu(enqueue, reps);
    rows.push({ name, gbPerS: bytes / (timing.ms * 1e6), gbPerCpuS: bytes / (timing.cpuMs * 1e6), ms: timing.ms });
  };
  await add('buffer copy (copyBufferToBuffer)', 2 * bytes4, () => rt.copy(a.view, y.view));
  await add('add, scalar kernel (1 element/thread)', 3 * bytes4, () =>
    rt.dispatch(binaryForward, { op: 'add' as const, broadcast: false }, [a.view, b.view, y.view], flatParams(n, ['a_stride', 'b_stride']), n),
  );
  await add('add, vec4 kernel (nd.add)', 3 * bytes4, () => nd.add(a, b).dispose());
  await add('sigmoid, scalar kernel', 2 * bytes4, () =>
    rt.dispatch(unaryForward, { op: 'sigmoid' as const, strided: false }, [a.view, y.view], flatParams(n, ['x_stride']), n),
  );
  await add('sigmoid, vec4 kernel (nd.sigmoid)', 2 * bytes4, () => nd.sigmoid(a).dispose());
  await add('fused a·x+b, vec4 kernel (nd.affine)', 2 * bytes4, () => nd.affine(a, 2, 1).dispose());
  for (const t of [a, b, y]) t.dispose();
  return rows;
}
