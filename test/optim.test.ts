import { describe, expect, it } from 'vitest';
import * as nd from '../src/index.ts';
import { adamReference, type AdamGroupRef } from '../src/kernels/optim/adam.ts';
import { emaReference } from '../src/kernels/optim/ema.ts';
import { expectClose } from './helpers/check-op.ts';

function randomData(n: number, rng: nd.Rng, scale = 1): Float32Array {
  const data = new Float32Array(n);
  for (let i = 0; i < n; i++) data[i] = scale * rng.normal();
  return data;
}

function concat(parts: ArrayLike<number>[]): Float64Array {
  const out = new Float64Array(parts.reduce((n, p) => n + p.length, 0));
  let offset = 0;
  for (const p of parts) {
    out.set(Array.from(p), offset);
    offset += p.length;
  }
  return out;
}

/** Parameters of awkward sizes (1, non-multiples of 4 and of the alignment) in three groups. */
const GROUP_SHAPES: number[][][] = [[[1], [7], [3, 5]], [[65]], [[130], [2, 2, 3], [4]]];

function makeParams(rng: nd.Rng): nd.Tensor[][] {
  return GROUP_SHAPES.map((shapes) =>
    shapes.map((shape) => {
      const t = nd.keep(nd.tensor(randomData(nd.sizeOf(shape), rng), shape));
      t.requiresGrad = true;
      return t;
    }),
  );
}

describe('Adam / AdamW kernel vs float64 reference', () => {
  for (const kind of ['Adam', 'AdamW'] as const) {
    it(`${kind}: 6 steps, 3 groups with their own lr and weight decay, a schedule and a gradient scale`, async () => {
      const rng = new nd.Rng(kind === 'Adam' ? 11 : 12);
      const groups = makeParams(rng);
      const settings = [
        { lr: 0.01, weightDecay: 0.1 },
        { lr: 0.003, weightDecay: 0 },
        { lr: 0.05, weightDecay: 0.02 },
      ];
      const schedule = nd.linearWarmup(2, nd.exponentialDecay(0.5, 3));
      const hyper = { betas: [0.8, 0.95] as const, eps: 1e-6, gradScale: 0.5 };
      const Optimizer = kind === 'Adam' ? nd.Adam : nd.AdamW;
      const opt = new Optimizer(
        groups.map((params, k) => ({ params, ...settings[k] })),
        { ...hyper, betas: [0.8, 0.95], schedule },
      );
      const all = groups.flat();
      const param = concat(await Promise.all(all.map((p) => p.data())));
      const m = new Float64Array(param.length);
      const v = new Float64Array(param.length);
      let end = 0;
      const refGroups: AdamGroupRef[] = groups.map((params, k) => {
        end += params.reduce((n, p) => n + p.size, 0);
        return { end, lr: settings[k].lr, weightDecay: settings[k].weightDecay };
      });
      try {
        for (let step = 1; step <= 6; step++) {
          const grads = all.map((p) => randomData(p.size, rng));
          all.forEach((p, k) => nd.runtime().upload(p.grad!.view, grads[k]));
          opt.step();
          const factor = schedule(step - 1);
          adamReference(param, m, v, concat(grads), refGroups.map((g) => ({ ...g, lr: g.lr * factor })), {
            beta1: 0.8,
            beta2: 0.95,
            eps: 1e-6,
            step,
            decoupled: kind === 'AdamW',
            gradScale: 0.5,
          });
        }
        expect(opt.stepCount).toBe(6);
        expectClose(concat(await Promise.all(all.map((p) => p.data()))), param, 1e-5, 1e-6, `${kind} parameters`);
        const moments = all.map((p) => opt.state(p));
        expectClose(concat(await Promise.all(moments.map((s) => s.m.data()))), m, 1e-5, 1e-7, `${kind} m`);
        expectClose(concat(await Promise.all(moments.map((s) => s.v.data()))), v, 1e-5, 1e-7, `${kind} v`);
        for (const s of moments) {
          s.m.dispose();
          s.v.dispose();
        }
        // The padding between segments must stay exactly zero.
        const flatView = new nd.Tensor(opt.paramBuffer.retain(), [opt.layout.totalElements]);
        const flat = await flatView.data();
        flatView.dispose();
        const used = new Set<number>();
        for (const s of opt.layout.segments) for (let i = 0; i < s.length; i++) used.add(s.offset + i);
        flat.forEach((x, i) => {
          if (!used.has(i)) expect(x, `padding element ${i}`).toBe(0);
        });
      } finally {
        opt.dispose();
        for (const p of all) p.dispose();
      }
    });
  }

  it('the reference itself: one step of torch-style Adam by hand', () => {
    const param = Float64Array.of(1);
    const m = new Float64Array(1);
    const v = new Float64Array(1);
    adamReference(param, m, v, [2], [{ end: 1, lr: 0.1, weightDecay: 0 }], { beta1: 0.9, beta2: 0.999, eps: 0, step: 1, decoupled: false });
    // m̂ = g, v̂ = g², so the first step moves by exactly lr·sign(g).
    expect(param[0]).toBeCloseTo(0.9, 12);
    expect(m[0]).toBeCloseTo(0.2, 12);
    expect(v[0]).toBeCloseTo(0.004, 12);
  });
});

describe('flat parameter arena', () => {
  it('keeps parameter values, gives views into one gradient buffer that backward accumulates into', async () => {
    const rng = new nd.Rng(3);
    const w = nd.keep(nd.tensor(randomData(6, rng), [2, 3]));
    const b = nd.keep(nd.tensor(randomData(2, rng), [2]));
    w.requiresGrad = b.requiresGrad = true;
    const before = [...(await w.data())];
    const x = nd.keep(nd.tensor(randomData(12, rng), [4, 3]));
    const opt = new nd.Adam([w, b], { lr: 0.1 });
    try {
      expect([...(await w.data())]).toEqual(before);
      expect(w.storage.view.pooled).toBe(opt.paramBuffer.view.pooled);
      expect(b.storage.view.pooled).toBe(opt.paramBuffer.view.pooled);
      expect(w.grad!.storage.view.pooled).toBe(opt.gradBuffer.view.pooled);
      const grad0 = w.grad;
      for (let k = 0; k < 2; k++) nd.scope(() => nd.backward(nd.sum(nd.matmul(x, w, { transB: true, bias: b }))));
      expect(w.grad).toBe(grad0); // accumulated in place, not replaced
      // d/dW Σ (x Wᵀ + b) = Σ_rows x, twice; d/db = rows, twice.
      const xs = await x.data();
      const colSums = [0, 1, 2].map((j) => [0, 1, 2, 3].reduce((s, r) => s + xs[r * 3 + j], 0));
      expectClose(await w.grad!.data(), [...colSums, ...colSums].map((s) => 2 * s), 1e-5, 1e-5, 'dW');
      expectClose(await b.grad!.data(), [8, 8], 1e-6, 1e-6, 'db');
      opt.zeroGrad();
      expect([...(await w.grad!.data()), ...(await b.grad!.data())].every((g) => g === 0)).toBe(true);
    } finally {
      opt.dispose();
      for (const t of [w, b, x]) t.dispose();
    }
    expect(w.grad).toBeNull();
  });

  it('keeps a gradient that existed before the optimizer', async () => {
    const w = nd.keep(nd.tensor([1, 2, 3]));
    w.requiresGrad = true;
    nd.scope(() => nd.backward(nd.sum(nd.mul(w, 2))));
    const opt = new nd.Adam([w]);
    expect([...(await w.grad!.data())]).toEqual([2, 2, 2]);
    opt.dispose();
    w.dispose();
  });

  it('refuses bad parameter lists with clear errors', () => {
    const a = nd.keep(nd.tensor([1, 2]));
    const idx = nd.keep(nd.tensor([1], [1], 'i32'));
    try {
      expect(() => new nd.Adam([])).toThrow(/empty parameter list/);
      expect(() => new nd.Adam([{ params: [a] }, { params: [a] }])).toThrow(/appears twice \(groups 0 and 1\)/);
      expect(() => new nd.Adam([idx])).toThrow(/must be f32/);
      expect(() => new nd.Adam(Array.from({ length: 17 }, () => ({ params: [] as nd.Tensor[] })))).toThrow(/17 parameter groups.*at most 16/);
      expect(() => new nd.Adam([a], { betas: [1, 0.9] })).toThrow(/beta1 must be in \[0, 1\)/);
      const first = new nd.Adam([a]);
      expect(() => new nd.AdamW([a])).toThrow(/already managed by another optimizer/);
      const grad = a.grad!;
      a.grad = null;
      expect(() => first.step()).toThrow(/gradient of .* was replaced or disposed/);
      a.grad = grad;
      first.step();
      first.dispose();
      expect(() => first.step()).toThrow(/disposed/);
      new nd.AdamW([a]).dispose(); // free again once the first is disposed
    } finally {
      a.dispose();
      idx.dispose();
    }
  });
});

describe('a tiny MLP trains', () => {
  it('seeded regression: the loss falls at least 10×', async () => {
    const rng = new nd.Rng(2024);
    const n = 128;
    const xs = randomData(n * 2, rng);
    const ys = new Float32Array(n);
    for (let i = 0; i < n; i++) ys[i] = Math.sin(1.5 * xs[2 * i]) + 0.5 * xs[2 * i] * xs[2 * i + 1];
    const x = nd.keep(nd.tensor(xs, [n, 2]));
    const y = nd.keep(nd.tensor(ys, [n, 1]));
    const model = new nd.MLP([2, 32, 32, 1], { activation: 'tanh', rng: new nd.Rng(5) });
    const opt = new nd.Adam(model.parameters(), { lr: 0.01, schedule: nd.cosine(300, 0.1) });
    const losses: number[] = [];
    try {
      for (let step = 0; step < 300; step++) {
        const loss = nd.scope(() => {
          const l = nd.mean(nd.square(nd.sub(model.forward(x), y)));
          nd.backward(l);
          opt.step();
          opt.zeroGrad();
          return l;
        });
        // sync() first: it waits without consulting or teaching the runtime's adaptive wait, whose per-dispatch
        // estimate (learned from reads that included pipeline compiles) can make a read of 8000 queued dispatches
        // sleep many times longer than the work takes.
        if (step === 0 || step === 299) await nd.runtime().sync();
        if (step === 0 || step === 299) losses.push(await loss.item());
        loss.dispose();
      }
    } finally {
      opt.dispose();
      model.dispose();
      x.dispose();
      y.dispose();
    }
    expect(losses[1]).toBeLessThan(losses[0] / 10);
  });
});

describe('EMA', () => {
  it('averages the flat parameters like the reference and swaps them in for evaluation', async () => {
    const rng = new nd.Rng(9);
    const params = [nd.keep(nd.tensor(randomData(5, rng), [5])), nd.keep(nd.tensor(randomData(66, rng), [6, 11]))];
    for (const p of params) p.requiresGrad = true;
    const opt = new nd.Adam(params, { lr: 0.1 });
    const ema = new nd.Ema(opt, 0.7);
    const shadow = concat(await Promise.all(params.map((p) => p.data())));
    try {
      for (let step = 0; step < 4; step++) {
        params.forEach((p) => nd.runtime().upload(p.grad!.view, randomData(p.size, rng)));
        opt.step();
        ema.update();
        emaReference(shadow, concat(await Promise.all(params.map((p) => p.data()))), 0.7);
      }
      const averages = params.map((p) => ema.averageOf(p));
      expectClose(concat(await Promise.all(averages.map((a) => a.data()))), shadow, 1e-6, 1e-6, 'EMA shadow');
      averages.forEach((a) => a.dispose());
      const trained = await params[1].data();
      const inside = await ema.withAverage(() => params[1].data());
      expectClose(inside, shadow.subarray(5), 1e-6, 1e-6, 'weights inside withAverage');
      expect([...(await params[1].data())]).toEqual([...trained]);
    } finally {
      ema.dispose();
      opt.dispose();
      params.forEach((p) => p.dispose());
    }
  });
});

describe('learning-rate schedules', () => {
  it('are pure functions of the step with the documented values', () => {
    expect(nd.constant(0.5)(123)).toBe(0.5);
    expect(nd.exponentialDecay(0.1, 100)(50)).toBeCloseTo(0.1 ** 0.5, 12);
    expect(nd.exponentialDecay(0.1, 100, { staircase: true })(150)).toBeCloseTo(0.1, 12);
    expect(nd.stepDecay(10, 0.5)(9)).toBe(1);
    expect(nd.stepDecay(10, 0.5)(25)).toBe(0.25);
    expect(nd.multiStepDecay([5, 10], 0.1)(10)).toBeCloseTo(0.01, 12);
    expect(nd.cosine(100, 0.1)(0)).toBeCloseTo(1, 12);
    expect(nd.cosine(100, 0.1)(50)).toBeCloseTo(0.55, 12);
    expect(nd.cosine(100, 0.1)(1000)).toBeCloseTo(0.1, 12);
    expect(nd.linearDecay(10, 0.5)(5)).toBeCloseTo(0.75, 12);
    const warm = nd.linearWarmup(4, nd.stepDecay(2, 0.5), 0);
    expect([0, 1, 2, 3, 4, 5, 6].map(warm)).toEqual([0, 0.25, 0.5, 0.75, 1, 1, 0.5]);
    const seq = nd.sequence([nd.constant(2), 3], [nd.linearDecay(2, 0), 0]);
    expect([0, 2, 3, 4, 5, 9].map(seq)).toEqual([2, 2, 1, 0.5, 0, 0]);
    expect(nd.product(nd.constant(2), nd.stepDecay(1, 0.5))(2)).toBe(0.5);
    expect(() => nd.cosine(0)).toThrow(/totalSteps must be a positive number/);
  });

  it('drive the optimizer: learningRates() = base lr × schedule(steps taken)', () => {
    const a = nd.keep(nd.tensor([1]));
    const b = nd.keep(nd.tensor([2]));
    const opt = new nd.Adam([{ params: [a], lr: 1 }, { params: [b], lr: 0.1, schedule: nd.constant(3) }], { schedule: nd.stepDecay(1, 0.5) });
    try {
      expect(opt.learningRates()).toEqual([1, 0.30000000000000004]);
      opt.step();
      opt.step();
      expect(opt.learningRates()).toEqual([0.25, 0.30000000000000004]);
    } finally {
      opt.dispose();
      a.dispose();
      b.dispose();
    }
  });
});
