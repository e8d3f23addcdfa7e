/**
 * The matmul implementations a TypeScript user might pick instead of ours, each behind the same small interface:
 * `prepare(N)` builds inputs (seeded) and returns a call that computes one N×N·N×N product and has its result
 * on the host.
 *
 * - tfjs 4.22 with its WebAssembly backend (`@tensorflow/tfjs-backend-wasm`, SIMD; Node gets the single-threaded
 *   build: the threaded one needs cross-origin-isolated workers).
 * - gpu.js 2.24: its modes are chosen with `new GPU({ mode })`. `webgpu` (WGSL compute shaders; in Node it needs
 *   `navigator.gpu`, which we give it from a second Dawn instance), `webasm` (WebAssembly + f32x4 SIMD; synchronous
 *   calls run on one thread, `asyncMode: true` splits kernels across a worker pool), `headlessgl` (the default in
 *   Node; needs the optional `gl` package) and `cpu` (plain JavaScript).
 * - A plain Float32Array i-k-j loop.
 */
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { Rng } from '../src/index.ts';

const require = createRequire(import.meta.url);

export interface Peer {
  name: string;
  note: string;
  /** Why it cannot run here, or null. */
  unavailable(): Promise<string | null>;
  prepare(N: number): Promise<() => unknown>;
  release?(): Promise<void> | void;
}

function randomMatrix(N: number, seed: number): Float32Array {
  const rng = new Rng(seed);
  const m = new Float32Array(N * N);
  for (let i = 0; i < m.length; i++) m[i] = rng.normal();
  return m;
}

// ---------------------------------------------------------------------------------------------------------------
// tfjs + wasm backend

type Tf = typeof import('@tensorflow/tfjs-core');
let tfPromise: Promise<Tf> | null = null;

async function loadTf(): Promise<Tf> {
  tfPromise ??= (async () => {
    const tf = await import('@tensorflow/tfjs-core');
    const wasm = await import('@tensorflow/tfjs-backend-wasm');
    wasm.setWasmPaths(join(dirname(require.resolve('@tensorflow/tfjs-backend-wasm/package.json')), 'dist') + '/');
    if (!(await tf.setBackend('wasm'))) throw new Error('tf.setBackend("wasm") failed');
    await tf.ready();
    return tf;
  })();
  return tfPromise;
}

let tfInputs: { dispose(): void }[] = [];

export const tfjsWasmMatmul: Peer = {
  name: 'tfjs-wasm',
  note: 'tf.matMul + dataSync, 1 thread in Node',
  async unavailable() {
    try {
      await loadTf();
      return null;
    } catch (error) {
      return `unavailable: ${(error as Error).message.slice(0, 80)}`;
    }
  },
  async prepare(N) {
    const tf = await loadTf();
    const a = tf.tensor2d(randomMatrix(N, 1), [N, N]);
    const b = tf.tensor2d(randomMatrix(N, 2), [N, N]);
    tfInputs = [a, b];
    return () => {
      const c = tf.matMul(a, b);
      c.dataSync();
      c.dispose();
    };
  },
  release() {
    for (const t of tfInputs) t.dispose();
    tfInputs = [];
  },
};

// ---------------------------------------------------------------------------------------------------------------
// gpu.js

// gpu.js is CommonJS without types we rely on; its surface is used through this narrow shape.
interface GpuJsKernel {
  (a: unknown, b: unknown): unknown;
  kernel?: { constructor: { name: string }; fallbackReason?: string };
}
interface GpuJsInstance {
  createKernel(fn: unknown, settings: Record<string, unknown>): GpuJsKernel;
  destroy(): unknown;
}
interface GpuJsModule {
  GPU: {
    new (settings: { mode: string }): GpuJsInstance;
    isWebGPUAvailable(): Promise<boolean>;
    isWebAssemblySupported: boolean;
    isHeadlessGLSupported: boolean;
  };
  input(values: Float32Array, size: number[]): unknown;
}

// Kept referenced for the life of the process (webgpu@0.6.2 aborts node if the instance is garbage-collected).
let gpujsDawn: unknown = null;

function loadGpuJs(): GpuJsModule {
  if (!gpujsDawn) {
    // gpu.js finds WebGPU through navigator.gpu; Node 20 has no navigator. Give it one backed by Dawn.
    const webgpu = require('webgpu') as { create(flags: string[]): unknown; globals: object };
    Object.assign(globalThis, webgpu.globals);
    gpujsDawn = webgpu.create([]);
    const nav = (globalThis as { navigator?: object }).navigator;
    if (nav) Object.defineProperty(nav, 'gpu', { value: gpujsDawn, configurable: true });
    else Object.defineProperty(globalThis, 'navigator', { value: { gpu: gpujsDawn }, configurable: true, writable: true });
  }
  return require('gpu.js') as GpuJsModule;
}

/** The kernel every gpu.js mode runs: one output element per thread, the textbook dot product. */
function gpujsKernelSource(this: { thread: { x: number; y: number }; constants: { n: number } }, a: number[][], b: number[][]): number {
  let sum = 0;
  for (let i = 0; i < this.constants.n; i++) sum += a[this.thread.y][i] * b[i][this.thread.x];
  return sum;
}

function gpujsPeer(mode: string, asyncMode: boolean, note: string): Peer {
  let instance: GpuJsInstance | null = null;
  return {
    name: `gpu.js ${mode}${asyncMode ? ' async' : ''}`,
    note,
    async unavailable() {
      let gpujs: GpuJsModule;
      try {
        gpujs = loadGpuJs();
      } catch (error) {
        return `unavailable: ${(error as Error).message.slice(0, 80)}`;
      }
      if (mode === 'headlessgl' && !gpujs.GPU.isHeadlessGLSupported) return 'unavailable: needs the optional `gl` package (not installed; no GL here)';
      if (mode === 'webasm' && !gpujs.GPU.isWebAssemblySupported) return 'unavailable: no WebAssembly';
      if (mode === 'webgpu' && !(await gpujs.GPU.isWebGPUAvailable())) return 'unavailable: no WebGPU adapter answered';
      return null;
    },
    async prepare(N) {
      const gpujs = loadGpuJs();
      instance = new gpujs.GPU({ mode });
      const kernel = instance.createKernel(gpujsKernelSource, { constants: { n: N }, output: [N, N], asyncMode, tactic: 'precision' });
      const a = gpujs.input(randomMatrix(N, 1), [N, N]);
      const b = gpujs.input(randomMatrix(N, 2), [N, N]);
      return async () => {
        await kernel(a, b);
        const ran = kernel.kernel?.constructor.name ?? '';
        if (mode !== 'cpu' && ran === 'CPUKernel') throw new Error(`gpu.js fell back to cpu: ${kernel.kernel?.fallbackReason ?? '?'}`);
      };
    },
    release() {
      instance?.destroy();
      instance = null;
    },
  };
}

export const gpujsMatmul: Peer[] = [
  gpujsPeer('webgpu', false, 'WGSL via Dawn (2nd instance), incl. upload+readback'),
  gpujsPeer('webasm', false, 'wasm SIMD, 1 thread, sync call'),
  gpujsPeer('webasm', true, 'wasm SIMD + worker threads'),
  gpujsPeer('headlessgl', false, 'GLSL via headless-gl'),
  gpujsPeer('cpu', false, 'kernel transpiled to plain JS'),
];

// ---------------------------------------------------------------------------------------------------------------
// plain JavaScript

export const plainJsMatmul: Peer = {
  name: 'plain JS i-k-j',
  note: 'Float32Array, 1 thread',
  async unavailable() {
    return null;
  },
  async prepare(N) {
    const a = randomMatrix(N, 1);
    const b = randomMatrix(N, 2);
    const c = new Float32Array(N * N);
    return () => {
      c.fill(0);
      for (let i = 0; i < N; i++) {
        const row = i * N;
        for (let k = 0; k < N; k++) {
          const aik = a[row + k];
          const bk = k * N;
          for (let j = 0; j < N; j++) c[row + j] += aik * b[bk + j];
        }
      }
    };
  },
};
