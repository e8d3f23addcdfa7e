/**
 * nerfad's public API: tensors, autograd, ops, runtime. Experiments and models import from here.
 *
 *   import * as nd from 'nerfad';   // or '../src/index.ts' inside the repository
 *   await nd.init();
 */
import { initRuntime, runtime } from './kernels/runtime/runtime.ts';

export { initRuntime, runtime, Runtime, type BufferView } from './kernels/runtime/runtime.ts';
export { describeGpu, getGpu, NoAdapterError, type Gpu } from './kernels/runtime/gpu.ts';
export { defineKernel, type Kernel } from './kernels/runtime/kernel.ts';
export { Tensor, Storage, sizeOf, stridesOf, shapeString, viewAs, type DType, type Shape } from './tensor/tensor.ts';
export { tensor, scalar, full, zeros, ones, randn, rand, arange } from './tensor/create.ts';
export { Rng } from './tensor/random.ts';
export { scope, keep } from './tensor/scope.ts';
export { backward, noGrad, enableGrad, clearTape, tapeLength } from './autograd/tape.ts';
export { defineOp, type OpContext } from './autograd/op.ts';
export * from './ops/index.ts';
export * from './models/index.ts';
export * from './optim/index.ts';
export * from './io/index.ts';
export {
  defineExperiment,
  type Experiment,
  type ExperimentContext,
  type ExperimentDefinition,
  type CheckpointState,
  type ResumedState,
  type PlotSpec,
} from './cli/experiment.ts';
export { writeLinePlot, renderLinePlot, type LinePlotOptions, type PlotSeries } from './cli/plot.ts';
export { writeImagePng, readImagePng, encodePng, sideBySide, upscale, type FloatImage } from './cli/image.ts';

/** Initialises the GPU runtime (idempotent). */
export async function init(): Promise<void> {
  await initRuntime();
}

/** Submits queued GPU work without waiting. */
export function flush(): void {
  runtime().flush();
}
