/**
 * FusedMLP (src/kernels/mlp/fused-mlp.ts) against the layer-by-layer MLP (matmul with a fused bias+activation
 * epilogue) at HashField's sizes: the density MLP [32 → 64 → 16] and the colour MLP [31 → 64 → 64 → 3].
 *
 *   npx tsx bench/fused-mlp.ts [rows=65536] [rounds=7]
 *
 * For each network: forward (no grad) and forward + backward (input and parameter gradients, as in training),
 * median over interleaved rounds (MLP, FusedMLP, MLP, …) so that load from other processes hits both alike. Each
 * figure is wall ms and CPU ms of this process (lavapipe's workers run inside it; on a shared machine the CPU time
 * is the steadier figure). GPU work is awaited with `runtime().sync()` (it probes for completion without busy-polling).
 */
import * as nd from '../src/index.ts';

const rows = Number(process.argv[2] ?? 65536);
const rounds = Number(process.argv[3] ?? 7);

const median = (v: number[]): number => [...v].sort((a, b) => a - b)[v.length >> 1];

interface Net {
  module: nd.AnyModule & { forward(x: nd.Tensor): nd.Tensor };
}

async function main(): Promise<void> {
  await nd.init();
  console.log(`adapter: ${nd.runtime().gpu.adapterName}; rows ${rows}, ${rounds} interleaved rounds`);
  const nets: { name: string; widths: number[] }[] = [
    { name: 'density', widths: [32, 64, 16] },
    { name: 'colour', widths: [31, 64, 64, 3] },
  ];
  for (const { name, widths } of nets) {
    const rng = new nd.Rng(1);
    const x = nd.keep(nd.randn([rows, widths[0]], rng));
    x.requiresGrad = true;
    const dy = nd.keep(nd.randn([rows, widths[widths.length - 1]], rng));
    const variants: Record<string, Net> = {
      MLP: { module: new nd.MLP(widths, { rng: new nd.Rng(2) }) },
      FusedMLP: { module: new nd.FusedMLP(widths, { rng: new nd.Rng(2) }) },
    };
    const run = async (key: string, module: Net['module'], train: boolean): Promise<{ wall: number; cpu: number }> => {
      const cpu0 = process.cpuUsage();
      const t0 = performance.now();
      const probe = nd.scope(() => {
        if (!train) return nd.noGrad(() => module.forward(x));
        nd.backward(module.forward(x), dy);
        return module.parameters()[0].grad!;
      });
      await nd.runtime().sync(); // probes for completion without busy-polling a core lavapipe could use
      const wall = performance.now() - t0;
      const used = process.cpuUsage(cpu0);
      if (!train) probe.dispose();
      for (const p of module.parameters()) {
        p.grad?.dispose();
        p.grad = null;
      }
      x.grad?.dispose();
      x.grad = null;
      return { wall, cpu: (used.user + used.system) / 1000 };
    };
    const samples: Record<string, { wall: number[]; cpu: number[] }> = {};
    for (let round = -1; round < rounds; round++) {
      for (const train of [false, true]) {
        for (const [vname, { module }] of Object.entries(variants)) {
          const key = `${vname} ${train ? 'fwd+bwd' : 'fwd'}`;
          const t = await run(key, module, train);
          if (round < 0) continue; // warm-up: pipeline compilation, pool growth
          (samples[key] ??= { wall: [], cpu: [] }).wall.push(t.wall);
          samples[key].cpu.push(t.cpu);
        }
      }
    }
    console.log(`\n${name} [${widths.join(' → ')}], ${rows} rows`);
    for (const [key, s] of Object.entries(samples)) {
      console.log(`  ${key.padEnd(18)} wall ${median(s.wall).toFixed(1).padStart(7)} ms   cpu ${median(s.cpu).toFixed(1).padStart(7)} ms`);
    }
    x.dispose();
    dy.dispose();
  }
}

await main();
