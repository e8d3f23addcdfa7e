/**
 * The hash backbone's two small MLPs (HashField: density [32 → 64 → 16], colour [31 → 64 → 64 → 3]) over the
 * samples of a 128² frame, without gradients: one matmul dispatch per layer (what training runs) against the
 * unrolled `mlpInfer` (what `MLP.forward` takes under noGrad on CPU adapters). Same weights, same inputs.
 */
import * as nd from '../src/index.ts';
import { timeGpu } from './timing.ts';

export interface MlpInferenceRow {
  mlp: string;
  rows: number;
  path: string;
  ms: number;
  gflops: number;
}

export async function benchMlpInference(rows: number): Promise<MlpInferenceRow[]> {
  const out: MlpInferenceRow[] = [];
  for (const widths of [
    [32, 64, 16],
    [31, 64, 64, 3],
  ]) {
    const rng = new nd.Rng(5);
    const mlp = new nd.MLP(widths, { rng });
    const x = nd.randn([rows, widths[0]], rng);
    let flops = 0;
    for (let l = 0; l + 1 < widths.length; l++) flops += 2 * rows * widths[l] * widths[l + 1];
    const paths: [string, () => void][] = [
      // Parameters require grad, so forward records and takes the matmul per layer (the tape is dropped unused).
      ['matmul per layer', () => nd.scope(() => void mlp.forward(x))],
      [nd.mlpInferSupported(widths) ? 'mlpInfer (noGrad)' : 'noGrad (matmul per layer: mlpInfer is for CPU adapters)', () => nd.noGrad(() => nd.scope(() => void mlp.forward(x)))],
    ];
    for (const [path, run] of paths) {
      const timing = await timeGpu(run, 5);
      out.push({ mlp: `[${widths.join(' → ')}]`, rows, path, ms: timing.ms, gflops: flops / (timing.ms * 1e6) });
    }
    x.dispose();
    mlp.dispose();
  }
  return out;
}
