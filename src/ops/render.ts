/**
 * Differentiable volume rendering (see src/kernels/render/composite.ts). Gradients flow to the raw density and raw
 * colour only; depths, ray-direction norms, background and target are data.
 */
import { defineOp } from '../autograd/op.ts';
import { runtime } from '../kernels/runtime/runtime.ts';
import { compositeBackward, compositeForward, type CompositeConsts } from '../kernels/render/composite.ts';
import type { DensityActivation } from '../kernels/render/composite.ref.ts';
import { Tensor, shapeString } from '../tensor/tensor.ts';

export interface VolumeRenderOptions {
  /** σ = relu(raw) + 1e-6 (NeRF/AD-NeRF, default), softplus(raw), or exp(raw) (instant-ngp/ER-NeRF). */
  activation?: DensityActivation;
  /** [R, 3]: the last sample of each ray takes this colour (AD-NeRF's torso/background trick). */
  background?: Tensor;
  /** Stop marching once transmittance falls below this (0 = exact). */
  transmittanceThreshold?: number;
}

interface Inputs {
  sigmaRaw: Tensor;
  rgbRaw: Tensor;
  z: Tensor;
  dirNorm: Tensor;
  background?: Tensor;
  target?: Tensor;
}

function validate(op: string, t: Inputs): { rays: number; samples: number } {
  const { sigmaRaw, rgbRaw, z, dirNorm } = t;
  if (sigmaRaw.rank !== 2) throw new Error(`${op}: sigmaRaw must be [rays, samples], got ${shapeString(sigmaRaw.shape)}`);
  const [rays, samples] = sigmaRaw.shape;
  const expect = (name: string, x: Tensor | undefined, shape: number[]): void => {
    if (x && (x.rank !== shape.length || x.shape.some((d, i) => d !== shape[i]))) {
      throw new Error(`${op}: ${name} must be ${shapeString(shape)}, got ${shapeString(x.shape)}`);
    }
  };
  expect('rgbRaw', rgbRaw, [rays, samples, 3]);
  expect('z', z, [rays, samples]);
  expect('dirNorm', dirNorm, [rays]);
  expect('background', t.background, [rays, 3]);
  expect('target', t.target, [rays, 3]);
  if (samples < 1) throw new Error(`${op}: need at least one sample per ray`);
  return { rays, samples };
}

function forwardRaw(t: Inputs, consts: CompositeConsts, threshold: number, rays: number, samples: number): { out: Tensor; loss: Tensor | null } {
  const out = Tensor.empty([rays, 5]);
  const loss = consts.loss ? Tensor.empty([rays]) : null;
  // Unused bindings get a harmless stand-in buffer (a kernel's binding table is fixed).
  const scratch = loss ?? Tensor.empty([1]);
  runtime().dispatch(
    compositeForward,
    consts,
    [t.sigmaRaw.view, t.rgbRaw.view, t.z.view, t.dirNorm.view, (t.background ?? t.z).view, (t.target ?? t.z).view, out.view, scratch.view],
    { rays, samples, t_threshold: threshold },
    rays,
  );
  if (!loss) scratch.dispose();
  return { out, loss };
}

function backwardRaw(t: Inputs, consts: CompositeConsts, threshold: number, out: Tensor, dL_dout: Tensor): [Tensor, Tensor] {
  const [rays, samples] = t.sigmaRaw.shape;
  const dL_dsigmaRaw = Tensor.empty([rays, samples]);
  const dL_drgbRaw = Tensor.empty([rays, samples, 3]);
  runtime().dispatch(
    compositeBackward,
    consts,
    [t.sigmaRaw.view, t.rgbRaw.view, t.z.view, t.dirNorm.view, (t.background ?? t.z).view, (t.target ?? t.z).view, out.view, dL_dout.view, dL_dsigmaRaw.view, dL_drgbRaw.view],
    { rays, samples, t_threshold: threshold },
    rays,
  );
  return [dL_dsigmaRaw, dL_drgbRaw];
}

/** Both raw gradients come from one kernel; the thunks share its result. */
function sharedGradients(compute: () => [Tensor, Tensor], needSigma: boolean, needRgb: boolean): [() => Tensor | null, () => Tensor | null] {
  let result: [Tensor, Tensor] | null = null;
  const get = (): [Tensor, Tensor] => (result ??= compute());
  return [
    () => {
      if (!needSigma) return null;
      const [dSigma, dRgb] = get();
      if (!needRgb) dRgb.dispose();
      return dSigma;
    },
    () => {
      if (!needRgb) return null;
      const [dSigma, dRgb] = get();
      if (!needSigma) dSigma.dispose();
      return dRgb;
    },
  ];
}

const renderOp = defineOp({
  name: 'volume_render',
  forward(ctx, sigmaRaw: Tensor, rgbRaw: Tensor, z: Tensor, dirNorm: Tensor, background: Tensor | undefined, opts: Required<Omit<VolumeRenderOptions, 'background'>>) {
    const inputs = { sigmaRaw, rgbRaw, z, dirNorm, background };
    const { rays, samples } = validate('volumeRender', inputs);
    const consts: CompositeConsts = { activation: opts.activation, background: !!background, loss: false };
    const { out } = forwardRaw(inputs, consts, opts.transmittanceThreshold, rays, samples);
    ctx.save(sigmaRaw, rgbRaw, z, dirNorm, out, ...(background ? [background] : []));
    return out;
  },
  backward(ctx, dL_dout) {
    const [sigmaRaw, rgbRaw, z, dirNorm, out, background] = ctx.saved;
    const opts = ctx.attrs.find((a) => typeof a === 'object' && a !== null) as Required<Omit<VolumeRenderOptions, 'background'>>;
    const consts: CompositeConsts = { activation: opts.activation, background: !!background, loss: false };
    const grads = sharedGradients(
      () => backwardRaw({ sigmaRaw, rgbRaw, z, dirNorm, background }, consts, opts.transmittanceThreshold, out, dL_dout),
      ctx.needsGrad[0],
      ctx.needsGrad[1],
    );
    return [...grads, ...ctx.needsGrad.slice(2).map(() => null)];
  },
});

/**
 * Renders rays: returns [R, 5] = (r, g, b, depth, acc). sigmaRaw [R, S], rgbRaw [R, S, 3] (pre-sigmoid),
 * z [R, S] sample depths, dirNorm [R] = |ray direction| (intervals are z-differences times it).
 */
export function volumeRender(sigmaRaw: Tensor, rgbRaw: Tensor, z: Tensor, dirNorm: Tensor, opts: VolumeRenderOptions = {}): Tensor {
  const settings = { activation: opts.activation ?? 'relu', transmittanceThreshold: opts.transmittanceThreshold ?? 0 };
  return renderOp(sigmaRaw, rgbRaw, z, dirNorm, opts.background, settings);
}

const renderLossOp = defineOp({
  name: 'volume_render_loss',
  forward(ctx, sigmaRaw: Tensor, rgbRaw: Tensor, z: Tensor, dirNorm: Tensor, target: Tensor, background: Tensor | undefined, opts: Required<Omit<VolumeRenderOptions, 'background'>>) {
    const inputs = { sigmaRaw, rgbRaw, z, dirNorm, background, target };
    const { rays, samples } = validate('volumeRenderLoss', inputs);
    const consts: CompositeConsts = { activation: opts.activation, background: !!background, loss: true };
    const { out, loss } = forwardRaw(inputs, consts, opts.transmittanceThreshold, rays, samples);
    ctx.save(sigmaRaw, rgbRaw, z, dirNorm, target, ...(background ? [background] : []));
    ctx.own(out);
    return loss!;
  },
  backward(ctx, dL_dloss) {
    const [sigmaRaw, rgbRaw, z, dirNorm, target, background] = ctx.saved;
    const [out] = ctx.owned;
    const opts = ctx.attrs.find((a) => typeof a === 'object' && a !== null) as Required<Omit<VolumeRenderOptions, 'background'>>;
    const consts: CompositeConsts = { activation: opts.activation, background: !!background, loss: true };
    const grads = sharedGradients(
      () => backwardRaw({ sigmaRaw, rgbRaw, z, dirNorm, background, target }, consts, opts.transmittanceThreshold, out, dL_dloss),
      ctx.needsGrad[0],
      ctx.needsGrad[1],
    );
    return [...grads, ...ctx.needsGrad.slice(2).map(() => null)];
  },
});

/**
 * Renders rays and returns the per-ray photometric loss |C − target|² [R], fused: one kernel forward, one kernel
 * backward straight to the raw network outputs (instant-ngp's compute_loss_kernel_train_nerf pattern).
 */
export function volumeRenderLoss(sigmaRaw: Tensor, rgbRaw: Tensor, z: Tensor, dirNorm: Tensor, target: Tensor, opts: VolumeRenderOptions = {}): Tensor {
  const settings = { activation: opts.activation ?? 'relu', transmittanceThreshold: opts.transmittanceThreshold ?? 0 };
  return renderLossOp(sigmaRaw, rgbRaw, z, dirNorm, target, opts.background, settings);
}
