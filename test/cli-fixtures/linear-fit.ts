/**
 * A tiny experiment for test/cli.test.ts: full-batch gradient descent on y = X·w (deterministic, a few ms per step).
 * `failAt` throws after that step (a crash), so that resuming from the checkpoint can be tested; `interruptAt`
 * sends the process a SIGINT (as Ctrl-C does) after that step.
 */
import * as nd from '../../src/index.ts';

export default nd.defineExperiment({
  name: 'linear-fit',
  description: 'gradient descent on a small linear regression (CLI tests)',
  config: { steps: 6, lr: 0.1, seed: 3, checkpointEvery: 3, failAt: 0, interruptAt: 0, label: 'plain', verbose: false, dims: [8, 3], model: { scale: 1 } },
  variants: { fast: { lr: 0.3 }, long: { steps: 12, model: { scale: 2 } } },
  async run(ctx) {
    const { steps, lr, seed, dims, model } = ctx.config;
    const [n, d] = dims;
    const rng = new nd.Rng(seed);
    const x = nd.keep(nd.randn([n, d], rng));
    const y = nd.keep(nd.mul(nd.matmul(x, nd.randn([d, 1], rng)), model.scale));
    const w = nd.keep(nd.zeros([d, 1]));
    w.requiresGrad = true;
    const resumed = await ctx.resume({ tensors: { w } });
    let step = resumed?.step ?? 0;
    while (step < steps && !ctx.stopRequested) {
      step += 1;
      const loss = nd.scope(() => {
        const l = nd.mean(nd.square(nd.sub(nd.matmul(x, w), y)));
        nd.backward(l);
        nd.noGrad(() => nd.accumulate(w, nd.mul(w.grad!, -lr)));
        nd.runtime().clear(w.grad!.view);
        return l;
      });
      ctx.record(step, { loss: await loss.item(), lr });
      loss.dispose();
      if (step % ctx.config.checkpointEvery === 0) await ctx.checkpoint({ step, tensors: { w }, data: { note: `at ${step}` } });
      if (step === ctx.config.failAt) throw new Error(`linear-fit: simulated crash after step ${step}`);
      if (step === ctx.config.interruptAt) process.emit('SIGINT', 'SIGINT');
    }
    if (ctx.stopRequested) await ctx.checkpoint({ step, tensors: { w } });
    ctx.summary({ w0: (await w.data())[0], resumedFrom: resumed?.step ?? -1 });
    for (const t of [x, y, w]) t.dispose();
  },
});
