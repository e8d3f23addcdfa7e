import { describe, expect, it } from 'vitest';
import * as nd from '../src/index.ts';

function parameter(shape: number[], rng: nd.Rng, std: number): nd.Tensor {
  const t = nd.keep(nd.randn(shape, rng, std));
  t.requiresGrad = true;
  return t;
}

/** A 2-layer MLP regression step with plain SGD, written only with engine ops. */
function sgdStep(params: nd.Tensor[], x: nd.Tensor, target: nd.Tensor, lr: number): nd.Tensor {
  const [w1, b1, w2, b2] = params;
  return nd.scope(() => {
    const h = nd.matmul(x, w1, { bias: b1, activation: 'tanh' });
    const y = nd.matmul(h, w2, { bias: b2 });
    const loss = nd.mean(nd.square(nd.sub(y, target)));
    nd.backward(loss);
    nd.noGrad(() => {
      for (const p of params) {
        nd.accumulate(p, nd.mul(p.grad!, -lr));
        nd.runtime().clear(p.grad!.view);
      }
    });
    return loss;
  });
}

describe('autograd', () => {
  it('accumulates gradients over uses and over backward calls', async () => {
    const x = nd.tensor([1, 2, 3]);
    x.requiresGrad = true;
    nd.scope(() => nd.backward(nd.sum(nd.add(nd.mul(x, x), x)))); // d/dx (x² + x) = 2x + 1
    expect([...(await x.grad!.data())]).toEqual([3, 5, 7]);
    nd.scope(() => nd.backward(nd.sum(x)));
    expect([...(await x.grad!.data())]).toEqual([4, 6, 8]);
    x.dispose();
  });

  it('records nothing under noGrad and for inputs without requiresGrad', () => {
    const x = nd.tensor([1, 2]);
    x.requiresGrad = true;
    const before = nd.tapeLength();
    nd.scope(() => {
      nd.noGrad(() => nd.exp(x));
      nd.exp(nd.tensor([1, 2]));
      expect(nd.tapeLength()).toBe(before);
      nd.exp(x);
      expect(nd.tapeLength()).toBe(before + 1);
    });
    expect(nd.tapeLength()).toBe(before); // the scope's nodes are dropped with it
    x.dispose();
  });

  it('says why when backward is called after the graph was freed', () => {
    const x = nd.tensor([1, 2]);
    x.requiresGrad = true;
    const y = nd.scope(() => nd.sum(nd.exp(x)));
    expect(() => nd.backward(y)).toThrow(/graph .* was freed when its scope ended/);
    expect(() => nd.backward(nd.tensor([1]))).toThrow(/does not require grad/);
    y.dispose();
    x.dispose();
  });

  it('refuses a non-scalar loss without dLoss, and use after dispose', () => {
    const x = nd.tensor([1, 2]);
    x.requiresGrad = true;
    nd.scope(() => {
      expect(() => nd.backward(nd.exp(x))).toThrow(/must be a scalar/);
    });
    x.dispose();
    expect(() => nd.exp(x)).toThrow(/used after dispose/);
  });

  it('frees intermediate gradients and leaves no tensors behind a scope', () => {
    const rng = new nd.Rng(3);
    const params = [parameter([4, 8], rng, 0.5), parameter([8], rng, 0.1), parameter([8, 2], rng, 0.5), parameter([2], rng, 0.1)];
    const x = nd.keep(nd.randn([16, 4], rng));
    const target = nd.keep(nd.randn([16, 2], rng));
    sgdStep(params, x, target, 0.1).dispose();
    const inUse = nd.runtime().pool.getStats().buffersInUse;
    sgdStep(params, x, target, 0.1).dispose();
    expect(nd.runtime().pool.getStats().buffersInUse).toBe(inUse);
    for (const t of [...params, x, target]) t.dispose();
  });
});

describe('runtime', () => {
  it('reads nothing back during a training step, and memory stays flat over 1,000 steps', async () => {
    const rt = nd.runtime();
    const rng = new nd.Rng(7);
    const params = [parameter([3, 16], rng, 0.5), parameter([16], rng, 0.1), parameter([16, 1], rng, 0.5), parameter([1], rng, 0.1)];
    const x = nd.keep(nd.randn([32, 3], rng));
    // A smooth target the MLP can fit: y = sin(x0) + 0.5·x1·x2.
    const xs = await x.data();
    const ys = Array.from({ length: 32 }, (_, i) => Math.sin(xs[i * 3]) + 0.5 * xs[i * 3 + 1] * xs[i * 3 + 2]);
    const target = nd.keep(nd.tensor(ys, [32, 1]));

    const first = sgdStep(params, x, target, 0.05);
    const firstLoss = await first.item();
    first.dispose();

    const readsBefore = rt.stats.readbacks;
    let bytesAfterWarmup = 0;
    let last: nd.Tensor | null = null;
    for (let step = 0; step < 1000; step++) {
      last?.dispose();
      last = sgdStep(params, x, target, 0.05);
      if (step === 10) bytesAfterWarmup = rt.pool.getStats().bytesAllocated;
    }
    expect(rt.stats.readbacks - readsBefore).toBe(0); // nothing awaited inside 1,000 steps
    expect(rt.pool.getStats().bytesAllocated).toBe(bytesAfterWarmup);
    const lastLoss = await last!.item();
    expect(lastLoss).toBeLessThan(firstLoss * 0.2); // and it trains
    last!.dispose();
    for (const t of [...params, x, target]) t.dispose();
  });

  it('flushes automatically and orders uploads after queued work', async () => {
    const rt = nd.runtime();
    const a = nd.tensor([1, 2, 3, 4]);
    const b = nd.exp(a); // queued, reads a
    rt.upload(a.view, new Float32Array([10, 20, 30, 40])); // must not overtake the queued read of a
    const c = nd.add(a, 0);
    expect([...(await b.data())].map((v) => Math.round(Math.log(v)))).toEqual([1, 2, 3, 4]);
    expect([...(await c.data())]).toEqual([10, 20, 30, 40]);
    const submits = rt.stats.submits;
    const pending = nd.scope(() => {
      let t = nd.tensor([0]);
      for (let i = 0; i < rt.autoFlushEvery + 1; i++) t = nd.add(t, 1);
      return t;
    });
    expect(rt.stats.submits).toBeGreaterThan(submits); // an automatic flush happened
    expect(await pending.item()).toBe(rt.autoFlushEvery + 1);
    for (const t of [a, b, c, pending]) t.dispose();
  });

  it('reports WGSL compile errors with the kernel name and line', async () => {
    const broken = nd.defineKernel({
      name: 'broken_for_test',
      bindings: [{ name: 'y', access: 'rw' }],
      params: [{ name: 'n', type: 'u32' }],
      workgroupSize: 1,
      wgsl: () => `struct Params { n: u32 }
@group(0) @binding(0) var<storage, read_write> y: array<f32>;
@group(0) @binding(1) var<uniform> p: Params;
@compute @workgroup_size(1) fn main() { y[0] = undefined_name; }`,
    });
    const t = nd.zeros([1]);
    nd.runtime().dispatch(broken, undefined, [t.view], { n: 1 }, 1);
    await expect(t.data()).rejects.toThrow(/kernel 'broken_for_test' at line 4:\d+: .*undefined_name/s);
    t.dispose();
  });
});
