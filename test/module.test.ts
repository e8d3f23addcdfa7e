import { describe, expect, it } from 'vitest';
import * as nd from '../src/index.ts';
import { conv2dReference, convTranspose2dReference } from '../src/kernels/conv/conv.ref.ts';
import { rowNormReference } from '../src/kernels/norm/norm.ts';
import { gruCellReference } from '../src/kernels/rnn/gru.ref.ts';
import { ACTIVATION_REF, type Activation } from '../src/kernels/matmul/matmul.ts';
import { expectClose, makeInputs } from './helpers/check-op.ts';

/**
 * Checks a module end to end against a float64 reference of its math, with the module's own (seeded) parameters:
 *   1. GPU forward vs reference forward;
 *   2. GPU gradients of every parameter and input (loss Σ w ⊙ y, random w) vs central finite differences of the
 *      reference in float64 (sampled coordinates).
 * The reference receives the parameters in `namedParameters()` order, so this also checks the wiring (which
 * tensor is the weight, its layout, which is the bias).
 */
async function checkModule(opts: {
  name: string;
  module: nd.AnyModule;
  inputShapes: number[][];
  ref: (params: Float64Array[], inputs: Float64Array[]) => Float64Array;
  seed?: number;
  rtol?: number;
  atol?: number;
  gradTol?: number;
}): Promise<void> {
  const rng = new nd.Rng(opts.seed ?? 77);
  const named = opts.module.namedParameters();
  const params = await Promise.all(named.map(async ([, p]) => Float64Array.from(await p.data())));
  const inputs = makeInputs(opts.inputShapes.map((shape) => ({ shape })), rng);
  const expected = opts.ref(params, inputs);
  const w = Float64Array.from({ length: expected.length }, () => Math.fround(rng.normal()));
  const xs = inputs.map((data, k) => {
    const t = nd.tensor(data, opts.inputShapes[k]);
    t.requiresGrad = true;
    return t;
  });
  try {
    const y = nd.scope(() => {
      const out = opts.module.forward(...xs);
      nd.backward(out, nd.tensor(w, out.shape));
      return out;
    });
    expectClose(await y.data(), expected, opts.rtol ?? 1e-5, opts.atol ?? 1e-5, `${opts.name} forward`);
    y.dispose();

    const loss = (ps: Float64Array[], ins: Float64Array[]): number => opts.ref(ps, ins).reduce((s, v, i) => s + v * w[i], 0);
    const h = 1e-6;
    const tol = opts.gradTol ?? 2e-4;
    const check = async (what: string, values: Float64Array[], k: number, grad: nd.Tensor | null, other: Float64Array[], paramsFirst: boolean) => {
      expect(grad, `${opts.name}: ${what} received no gradient`).not.toBeNull();
      const gpu = await grad!.data();
      const n = values[k].length;
      const coords = n <= 24 ? Array.from({ length: n }, (_, j) => j) : Array.from({ length: 24 }, () => rng.int(n));
      const fd = coords.map((j) => {
        const plus = values.map((v) => v.slice());
        const minus = values.map((v) => v.slice());
        plus[k][j] += h;
        minus[k][j] -= h;
        const f = (vs: Float64Array[]) => (paramsFirst ? loss(vs, other) : loss(other, vs));
        return (f(plus) - f(minus)) / (2 * h);
      });
      expectClose(coords.map((j) => gpu[j]), fd, tol, tol, `${opts.name} gradient of ${what}`);
    };
    for (let k = 0; k < named.length; k++) await check(named[k][0], params, k, named[k][1].grad, inputs, true);
    for (let k = 0; k < xs.length; k++) await check(`input ${k}`, inputs, k, xs[k].grad, params, false);
  } finally {
    for (const x of xs) x.dispose();
    opts.module.dispose();
  }
}

function linearReference(x: Float64Array, rows: number, inF: number, outF: number, w: Float64Array, b: Float64Array | null, act: Activation = 'none'): Float64Array {
  const y = new Float64Array(rows * outF);
  for (let r = 0; r < rows; r++) {
    for (let o = 0; o < outF; o++) {
      let s = b ? b[o] : 0;
      for (let i = 0; i < inF; i++) s += x[r * inF + i] * w[o * inF + i];
      y[r * outF + o] = ACTIVATION_REF[act](s);
    }
  }
  return y;
}

class Encoder extends nd.Module {
  readonly body: nd.Sequential;
  readonly head: nd.Linear;
  readonly norm: nd.LayerNorm;
  constructor(rng: nd.Rng) {
    super();
    this.body = this.addModule('body', new nd.Sequential(new nd.Linear(4, 8, { activation: 'relu', rng }), new nd.Linear(8, 8, { rng })));
    this.norm = this.addModule('norm', new nd.LayerNorm(8));
    this.head = this.addModule('head', new nd.Linear(8, 2, { bias: false, rng }));
    this.addBuffer('scale', nd.tensor([2]));
  }
  forward(x: nd.Tensor): nd.Tensor {
    return this.head.forward(this.norm.forward(this.body.forward(x)));
  }
}

describe('Module', () => {
  it('names parameters with dotted paths in registration order, buffers apart', () => {
    const net = nd.scope(() => new Encoder(new nd.Rng(1))); // parameters survive the scope (kept)
    try {
      expect(net.namedParameters().map(([n, t]) => `${n}${nd.shapeString(t.shape)}`)).toEqual([
        'body.0.weight[8, 4]',
        'body.0.bias[8]',
        'body.1.weight[8, 8]',
        'body.1.bias[8]',
        'norm.weight[8]',
        'norm.bias[8]',
        'head.weight[2, 8]',
      ]);
      expect(net.namedBuffers().map(([n]) => n)).toEqual(['scale']);
      expect(net.parameters().every((p) => p.requiresGrad && !p.isDisposed)).toBe(true);
      expect(net.parameterCount()).toBe(8 * 4 + 8 + 64 + 8 + 8 + 8 + 16);
      expect(net.namedModules().map(([n]) => n)).toEqual(['', 'body', 'body.0', 'body.1', 'norm', 'head']);
      expect(net.toString()).toContain('(head): Linear(8 → 2, no bias)');
      net.eval();
      expect(net.namedModules().every(([, m]) => !m.training)).toBe(true);
      net.train();
      expect(net.body.layers[1].training).toBe(true);
      net.requiresGrad(false);
      expect(net.parameters().some((p) => p.requiresGrad)).toBe(false);
    } finally {
      net.dispose();
    }
    expect(net.parameters().every((p) => p.isDisposed)).toBe(true);
    expect(net.isDisposed).toBe(true);
  });

  it('lists a shared module once and refuses bad or repeated names', () => {
    const shared = new nd.Linear(2, 2, { rng: new nd.Rng(2) });
    class Twice extends nd.Module {
      constructor() {
        super();
        this.addModule('a', shared);
        this.addModule('b', shared);
      }
      forward(x: nd.Tensor): nd.Tensor {
        return x;
      }
      tryAdd(name: string): void {
        this.addParameter(name, nd.zeros([1]));
      }
    }
    const twice = new Twice();
    expect(twice.namedParameters().map(([n]) => n)).toEqual(['a.weight', 'a.bias']);
    expect(() => twice.tryAdd('a')).toThrow(/'a' is already registered/);
    expect(() => twice.tryAdd('x.y')).toThrow(/name 'x.y' must be letters, digits or _/);
    twice.dispose();
  });

  it('initialises like torch, seeded and reproducible', async () => {
    const a = new nd.Linear(256, 128, { rng: new nd.Rng(7) });
    const b = new nd.Linear(256, 128, { rng: new nd.Rng(7) });
    nd.manualSeed(3);
    const c = new nd.Linear(256, 128);
    nd.manualSeed(3);
    const d = new nd.Linear(256, 128);
    try {
      const wa = Float64Array.from(await a.weight.data());
      expect([...(await b.weight.data())]).toEqual([...wa]);
      expect([...(await d.weight.data())]).toEqual([...(await c.weight.data())]);
      expect([...(await c.weight.data())]).not.toEqual([...wa]);
      // kaiming_uniform(a=√5): uniform(±1/√fan_in), variance bound²/3.
      const bound = 1 / Math.sqrt(256);
      expect(wa.every((v) => Math.abs(v) <= bound)).toBe(true);
      const variance = wa.reduce((s, v) => s + v * v, 0) / wa.length;
      expect(variance / (bound * bound / 3)).toBeGreaterThan(0.97);
      expect(variance / (bound * bound / 3)).toBeLessThan(1.03);
      expect((await a.bias!.data()).every((v) => Math.abs(v) <= bound)).toBe(true);
    } finally {
      for (const m of [a, b, c, d]) m.dispose();
    }
    const maxAbs = async (t: nd.Tensor) => Float64Array.from(await t.data()).reduce((m, v) => Math.max(m, Math.abs(v)), 0);
    const conv = new nd.Conv2d(3, 64, [3, 5], { rng: new nd.Rng(1) });
    const deconv = new nd.ConvTranspose2d(64, 3, 4, { rng: new nd.Rng(1) });
    const gru = new nd.GRUCell(5, 16, { rng: new nd.Rng(1) });
    const ln = new nd.LayerNorm([2, 3]);
    try {
      const near = (x: number, bound: number) => x <= bound && x > 0.9 * bound;
      expect(near(await maxAbs(conv.weight), 1 / Math.sqrt(3 * 15))).toBe(true);
      expect(near(await maxAbs(deconv.weight), 1 / Math.sqrt(3 * 16))).toBe(true); // torch's fan_in: dim 1 · kernel
      expect(near(await maxAbs(gru.weightHh), 1 / 4)).toBe(true);
      expect([...(await ln.weight!.data())]).toEqual([1, 1, 1, 1, 1, 1]);
      expect([...(await ln.bias!.data())]).toEqual([0, 0, 0, 0, 0, 0]);
      expect(gru.namedParameters().map(([n]) => n)).toEqual(['weight_ih', 'weight_hh', 'bias_ih', 'bias_hh']);
    } finally {
      for (const m of [conv, deconv, gru, ln]) m.dispose();
    }
  });
});

describe('Linear and MLP vs float64 references', () => {
  const cases: [number[], Activation][] = [
    [[5], 'none'],
    [[1, 5], 'relu'],
    [[7, 5], 'tanh'],
    [[2, 3, 5], 'sigmoid'],
    [[2, 1, 3, 5], 'none'],
  ];
  for (const [shape, activation] of cases) {
    it(`Linear(5 → 3, ${activation}) on ${nd.shapeString(shape)}`, async () => {
      const rows = shape.slice(0, -1).reduce((a, b) => a * b, 1);
      await checkModule({
        name: 'Linear',
        module: new nd.Linear(5, 3, { activation, rng: new nd.Rng(shape.length) }),
        inputShapes: [shape],
        ref: ([w, b], [x]) => linearReference(x, rows, 5, 3, w, b, activation),
      });
    });
  }

  it('Linear without bias; errors name the layer and the shape', async () => {
    const layer = new nd.Linear(3, 2, { bias: false, rng: new nd.Rng(4) });
    const x = nd.zeros([2, 4]);
    expect(() => layer.forward(x)).toThrow('Linear(3 → 2, no bias): input [2, 4] must end in 3 features');
    x.dispose();
    await checkModule({ name: 'Linear (no bias)', module: layer, inputShapes: [[4, 3]], ref: ([w], [x2]) => linearReference(x2, 4, 3, 2, w, null) });
  });

  it('MLP([3, 9, 6, 2]) fuses each activation and matches the composed reference', async () => {
    const mlp = new nd.MLP([3, 9, 6, 2], { activation: 'tanh', outputActivation: 'sigmoid', rng: new nd.Rng(8) });
    expect(mlp.namedParameters().map(([n]) => n)).toEqual(['0.weight', '0.bias', '1.weight', '1.bias', '2.weight', '2.bias']);
    expect(mlp.layers.map((l) => (l as nd.Linear).activation)).toEqual(['tanh', 'tanh', 'sigmoid']);
    await checkModule({
      name: 'MLP',
      module: mlp,
      inputShapes: [[5, 3]],
      ref: ([w0, b0, w1, b1, w2, b2], [x]) =>
        linearReference(linearReference(linearReference(x, 5, 3, 9, w0, b0, 'tanh'), 5, 9, 6, w1, b1, 'tanh'), 5, 6, 2, w2, b2, 'sigmoid'),
    });
  });
});

describe('conv, norm and recurrent modules vs float64 references', () => {
  it('Conv1d(3 → 4, k=3, stride 2, padding 1, dilation 2) on [2, 3, 9]', async () => {
    await checkModule({
      name: 'Conv1d',
      module: new nd.Conv1d(3, 4, 3, { stride: 2, padding: 1, dilation: 2, rng: new nd.Rng(1) }),
      inputShapes: [[2, 3, 9]],
      ref: ([w, b], [x]) => conv2dReference(x, [2, 3, 1, 9], w, [4, 3, 1, 3], b, { stride: [1, 2], padding: [0, 1], dilation: [1, 2] }),
    });
  });

  it('Conv2d(2 → 3, k=[3, 2], stride [2, 1], padding 1) on [2, 2, 5, 4]', async () => {
    await checkModule({
      name: 'Conv2d',
      module: new nd.Conv2d(2, 3, [3, 2], { stride: [2, 1], padding: 1, rng: new nd.Rng(2) }),
      inputShapes: [[2, 2, 5, 4]],
      ref: ([w, b], [x]) => conv2dReference(x, [2, 2, 5, 4], w, [3, 2, 3, 2], b, { stride: [2, 1], padding: [1, 1], dilation: [1, 1] }),
    });
  });

  it('ConvTranspose2d(3 → 2, k=3, stride 2, padding 1, outputPadding 1) on [1, 3, 3, 4]', async () => {
    await checkModule({
      name: 'ConvTranspose2d',
      module: new nd.ConvTranspose2d(3, 2, 3, { stride: 2, padding: 1, outputPadding: 1, rng: new nd.Rng(3) }),
      inputShapes: [[1, 3, 3, 4]],
      ref: ([w, b], [x]) =>
        convTranspose2dReference(x, [1, 3, 3, 4], w, [3, 2, 3, 3], b, { stride: [2, 2], padding: [1, 1], dilation: [1, 1] }, [1, 1]),
    });
  });

  it('LayerNorm([3, 5]) on [2, 3, 5] with non-trivial affine parameters', async () => {
    const ln = new nd.LayerNorm([3, 5]);
    // Replace the ones/zeros init so that a mix-up of weight and bias would show.
    nd.runtime().upload(ln.weight!.view, Float32Array.from({ length: 15 }, (_, i) => 0.5 + i / 10));
    nd.runtime().upload(ln.bias!.view, Float32Array.from({ length: 15 }, (_, i) => i / 7 - 1));
    await checkModule({
      name: 'LayerNorm',
      module: ln,
      inputShapes: [[2, 3, 5]],
      ref: ([w, b], [x]) => rowNormReference(x, { rows: 2, len: 15, paramIndex: (_r, j) => j, paramCount: 15 }, w, b, 1e-5),
      gradTol: 5e-4,
    });
  });

  it('InstanceNorm2d(3, affine) on [2, 3, 2, 3]; without affine it has no parameters', async () => {
    const plain = new nd.InstanceNorm2d(3);
    expect(plain.parameters()).toEqual([]);
    const norm = new nd.InstanceNorm2d(3, { affine: true });
    nd.runtime().upload(norm.weight!.view, Float32Array.of(0.5, 1.5, -1));
    nd.runtime().upload(norm.bias!.view, Float32Array.of(0.1, -0.2, 0.3));
    await checkModule({
      name: 'InstanceNorm2d',
      module: norm,
      inputShapes: [[2, 3, 2, 3]],
      ref: ([w, b], [x]) => rowNormReference(x, { rows: 6, len: 6, paramIndex: (r) => r % 3, paramCount: 3 }, w, b, 1e-5),
      gradTol: 5e-4,
    });
    await checkModule({
      name: 'InstanceNorm2d (plain)',
      module: plain,
      inputShapes: [[1, 3, 1, 5]],
      ref: (_p, [x]) => rowNormReference(x, { rows: 3, len: 5, paramIndex: (r) => r, paramCount: 3 }, null, null, 1e-5),
      gradTol: 5e-4,
    });
  });

  it('GRUCell(3, 5) with a given state, and with the zero state', async () => {
    await checkModule({
      name: 'GRUCell',
      module: new nd.GRUCell(3, 5, { rng: new nd.Rng(4) }),
      inputShapes: [[2, 3], [2, 5]],
      ref: ([wIh, wHh, bIh, bHh], [x, h]) => gruCellReference(x, h, wIh, wHh, bIh, bHh, { batch: 2, input: 3, hidden: 5 }),
    });
    await checkModule({
      name: 'GRUCell (zero state)',
      module: new nd.GRUCell(3, 5, { rng: new nd.Rng(5) }),
      inputShapes: [[1, 3]],
      ref: ([wIh, wHh, bIh, bHh], [x]) => gruCellReference(x, new Float64Array(5), wIh, wHh, bIh, bHh, { batch: 1, input: 3, hidden: 5 }),
    });
  });

  it('modules name themselves and the expected layout in input errors', () => {
    const conv = new nd.Conv2d(3, 4, 3, { rng: new nd.Rng(1) });
    const gru = new nd.GRUCell(3, 5, { rng: new nd.Rng(1) });
    const x = nd.zeros([1, 2, 4, 4]);
    try {
      expect(() => conv.forward(x)).toThrow(/Conv2d\(3 → 4, k=3×3.*input \[1, 2, 4, 4\] must be \[N, C, H, W\] with C = 3/);
      expect(() => gru.forward(x)).toThrow(/GRUCell\(3, 5\): input \[1, 2, 4, 4\] must be \[B, 3\]/);
      expect(() => new nd.Conv1d(0, 2, 3)).toThrow(/Conv1d: inChannels must be a positive integer, got 0/);
    } finally {
      x.dispose();
      conv.dispose();
      gru.dispose();
    }
  });
});
