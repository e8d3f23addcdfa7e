/**
 * Parameter initialisation, seeded: every scheme takes an `Rng` (or uses the default one, reseeded by
 * `manualSeed`, like torch.manual_seed). Values are drawn on the CPU in row-major order and uploaded once.
 *
 * Fans follow torch.nn.init._calculate_fan_in_and_fan_out: for a weight [out, in, ...kernel],
 * fan_in = in · ∏kernel and fan_out = out · ∏kernel (so for ConvTranspose's [in, out, ...] weight, "fan_in" is
 * out · ∏kernel, as in torch).
 */
import { tensor } from '../tensor/create.ts';
import { Rng } from '../tensor/random.ts';
import { Tensor, shapeString, sizeOf, type Shape } from '../tensor/tensor.ts';

let defaultRng = new Rng(0);

/** Reseeds the generator used by modules built without an explicit `rng`. */
export function manualSeed(seed: number): void {
  defaultRng = new Rng(seed);
}

/** The generator modules use when none is given. */
export function defaultGenerator(): Rng {
  return defaultRng;
}

export function calculateFans(shape: Shape): { fanIn: number; fanOut: number } {
  if (shape.length < 2) throw new Error(`init: fan in and fan out need a weight of rank ≥ 2, got ${shapeString(shape)}`);
  const receptive = sizeOf(shape.slice(2));
  return { fanIn: shape[1] * receptive, fanOut: shape[0] * receptive };
}

/** Uniform on [−bound, bound). */
export function uniformInit(shape: Shape, bound: number, rng: Rng = defaultRng): Tensor {
  const data = new Float32Array(sizeOf(shape));
  for (let i = 0; i < data.length; i++) data[i] = rng.range(-bound, bound);
  return tensor(data, shape);
}

export function normalInit(shape: Shape, std: number, rng: Rng = defaultRng, mean = 0): Tensor {
  const data = new Float32Array(sizeOf(shape));
  for (let i = 0; i < data.length; i++) data[i] = mean + std * rng.normal();
  return tensor(data, shape);
}

/**
 * Kaiming (He) uniform, torch's `kaiming_uniform_(w, a, mode='fan_in', nonlinearity='leaky_relu')`:
 * bound = gain · √(3 / fan_in), gain = √(2 / (1 + a²)). torch's default for Linear and Conv weights uses a = √5,
 * which gives bound = 1 / √fan_in.
 */
export function kaimingUniform(shape: Shape, a = Math.sqrt(5), rng: Rng = defaultRng, fanIn = calculateFans(shape).fanIn): Tensor {
  const gain = Math.sqrt(2 / (1 + a * a));
  return uniformInit(shape, gain * Math.sqrt(3 / Math.max(1, fanIn)), rng);
}

/** Xavier (Glorot) uniform: bound = gain · √(6 / (fan_in + fan_out)). */
export function xavierUniform(shape: Shape, gain = 1, rng: Rng = defaultRng): Tensor {
  const { fanIn, fanOut } = calculateFans(shape);
  return uniformInit(shape, gain * Math.sqrt(6 / Math.max(1, fanIn + fanOut)), rng);
}
