import { describe, it } from 'vitest';
import * as nd from '../src/index.ts';
import { UNARY_OPS, unaryBackwardReference, unaryReference, type UnaryOpName, type UnaryOp } from '../src/kernels/elementwise/unary.ts';
import { BINARY_OPS, binaryBackwardReference, binaryReference, type BinaryOpName, type BinaryOp } from '../src/kernels/elementwise/binary.ts';
import { checkOp, type InputDomain } from './helpers/check-op.ts';

// Inputs keep finite differences away from kinks and out of domains where the op is undefined.
const UNARY_CASES: Record<UnaryOpName, { domain: InputDomain; a?: number; b?: number; gpu: (x: nd.Tensor) => nd.Tensor }> = {
  identity: { domain: 'normal', gpu: (x) => nd.copy(x) },
  neg: { domain: 'normal', gpu: nd.neg },
  exp: { domain: 'normal', gpu: nd.exp },
  log: { domain: 'positive', gpu: nd.log },
  sqrt: { domain: 'positive', gpu: nd.sqrt },
  abs: { domain: 'awayFromZero', gpu: nd.abs },
  relu: { domain: 'awayFromZero', gpu: nd.relu },
  leaky_relu: { domain: 'awayFromZero', a: 0.1, gpu: (x) => nd.leakyRelu(x, 0.1) },
  sigmoid: { domain: 'normal', gpu: nd.sigmoid },
  tanh: { domain: 'normal', gpu: nd.tanh },
  softplus: { domain: (r) => r.range(-25, 25), gpu: nd.softplus },
  clamp: { domain: (r) => { const v = r.range(-2, 2); return Math.abs(Math.abs(v) - 0.5) < 0.05 ? v + 0.1 : v; }, a: -0.5, b: 0.5, gpu: (x) => nd.clamp(x, -0.5, 0.5) },
  pow_scalar: { domain: 'awayFromZero', a: 3, gpu: (x) => nd.pow(x, 3) },
  affine: { domain: 'normal', a: 2.5, b: -1, gpu: (x) => nd.affine(x, 2.5, -1) },
  reciprocal: { domain: 'awayFromZero', gpu: nd.reciprocal },
  square: { domain: 'normal', gpu: nd.square },
  sin: { domain: 'normal', gpu: nd.sin },
  cos: { domain: 'normal', gpu: nd.cos },
  sign: { domain: 'awayFromZero', gpu: nd.sign },
  step: { domain: 'awayFromZero', gpu: (x) => nd.copy(x) },
};

// [4, 33] takes the vec4 kernels (length a multiple of 4); the others the scalar ones.
const SHAPES = [[1], [7], [3, 5], [2, 3, 67], [4, 33]];

describe('unary ops: GPU vs f64 reference, backward vs finite differences', () => {
  for (const op of Object.keys(UNARY_OPS) as UnaryOpName[]) {
    const c = UNARY_CASES[op];
    const row = UNARY_OPS[op] as UnaryOp;
    if (op === 'step') continue; // step has no op wrapper of its own; sign covers the no-gradient path
    for (const shape of SHAPES) {
      it(`${op} ${JSON.stringify(shape)}`, async () => {
        await checkOp({
          name: op,
          inputs: [{ shape, domain: c.domain }],
          gpu: c.gpu,
          ref: (x) => unaryReference(op, x, c.a ?? 0, c.b ?? 0),
          refBackward: row.dref ? ([x], dy) => [unaryBackwardReference(op, x, dy, c.a ?? 0, c.b ?? 0)] : undefined,
          grad: row.dref !== undefined,
          rtol: op === 'softplus' || op === 'exp' ? 2e-6 : 1e-5,
          atol: 2e-6,
          seed: shape.length * 100 + shape[0],
        });
      });
    }
  }
});

const BINARY_SHAPES: [number[], number[]][] = [
  [[1], [1]],
  [[5, 67], [5, 67]],
  [[6, 44], [6, 44]], // vec4 kernels
  [[4, 3], [3]],
  [[4, 1], [1, 6]],
  [[2, 1, 5], [3, 1]],
  [[3], [2, 3, 3]],
];

const BINARY_DOMAINS: Partial<Record<BinaryOpName, [InputDomain, InputDomain]>> = {
  div: ['normal', 'awayFromZero'],
  pow: ['positive', 'normal'],
};

describe('binary ops with broadcasting', () => {
  for (const op of Object.keys(BINARY_OPS) as BinaryOpName[]) {
    const row = BINARY_OPS[op] as BinaryOp;
    for (const [aShape, bShape] of BINARY_SHAPES) {
      it(`${op} ${JSON.stringify(aShape)} ∘ ${JSON.stringify(bShape)}`, async () => {
        const [da, db] = BINARY_DOMAINS[op] ?? (row.da ? ['normal', 'normal'] : ['int', 'int']);
        await checkOp({
          name: op,
          inputs: [
            { shape: aShape, domain: da },
            { shape: bShape, domain: db },
          ],
          gpu: (a, b) => {
            const f = { add: nd.add, sub: nd.sub, mul: nd.mul, div: nd.div, pow: nd.pow, maximum: nd.maximum, minimum: nd.minimum, eq: nd.eq, gt: nd.gt, ge: nd.ge, lt: nd.lt }[op];
            return f(a, b);
          },
          ref: (a, b) => binaryReference(op, a, aShape, b, bShape),
          refBackward: row.daRef ? ([a, b], dy) => binaryBackwardReference(op, a, aShape, b, bShape, dy) : undefined,
          grad: row.daRef !== undefined,
          rtol: 1e-5,
          atol: 1e-6,
        });
      });
    }
  }
});

describe('vec4 elementwise kernels over more vec4s than one grid covers (grid-stride loop)', () => {
  // 4·64·64 = 16384 elements fill the largest grid chosen on CPU adapters once; 16400 makes some threads loop.
  for (const op of ['mul', 'sub'] as const) {
    it(`${op} [2, 8200] ∘ [2, 8200]`, async () => {
      const shape = [2, 8200];
      await checkOp({
        name: op,
        inputs: [{ shape }, { shape }],
        gpu: (a, b) => (op === 'mul' ? nd.mul(a, b) : nd.sub(a, b)),
        ref: (a, b) => binaryReference(op, a, shape, b, shape),
        refBackward: ([a, b], dy) => binaryBackwardReference(op, a, shape, b, shape, dy),
        rtol: 1e-5,
        atol: 1e-6,
      });
    });
  }
  it('tanh [16400]', async () => {
    await checkOp({
      name: 'tanh',
      inputs: [{ shape: [16400] }],
      gpu: nd.tanh,
      ref: (x) => unaryReference('tanh', x),
      refBackward: ([x], dy) => [unaryBackwardReference('tanh', x, dy)],
      rtol: 1e-5,
      atol: 2e-6,
    });
  });
  it('gradient accumulation of a reused input (accumulate_vec4)', async () => {
    await checkOp({
      name: 'x·x + x',
      inputs: [{ shape: [8, 8] }],
      gpu: (x) => nd.add(nd.mul(x, x), x),
      ref: (x) => x.map((v) => v * v + v),
      refBackward: ([x], dy) => [x.map((v, i) => dy[i] * (2 * v + 1))],
      rtol: 1e-5,
      atol: 1e-6,
    });
  });
});
