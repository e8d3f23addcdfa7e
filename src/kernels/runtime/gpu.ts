/**
 * Adapter and device creation: the one place that knows about Dawn's Node bindings (`webgpu`).
 *
 * - The object returned by `create()` is kept referenced for the life of the process: webgpu@0.6.2 aborts node
 *   (a pthread mutex assertion) when it is garbage-collected.
 * - Errors are collected with error scopes, never with an 'uncapturederror' listener: on webgpu@0.6.2 that listener
 *   crashes the process or hangs the next onSubmittedWorkDone.
 * - The limits this engine depends on are requested explicitly and checked once, and logged on request.
 */
import { mkdirSync, accessSync, constants as fsConstants } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { create, globals } from 'webgpu';

export interface Gpu {
  readonly device: GPUDevice;
  readonly adapter: GPUAdapter;
  /** Human-readable adapter name, e.g. "llvmpipe: Mesa 25.0.7 (LLVM 15.0.6)" or "NVIDIA H100 80GB HBM3". */
  readonly adapterName: string;
  /** True for CPU implementations (lavapipe/llvmpipe, SwiftShader): kernel variants are chosen by this. */
  readonly isSoftware: boolean;
  readonly features: ReadonlySet<string>;
}

/** The limits the kernels rely on. A device that cannot give them is refused with a clear error. */
export const REQUIRED_LIMITS = {
  maxStorageBuffersPerShaderStage: 10,
  maxComputeWorkgroupStorageSize: 16384,
  maxComputeInvocationsPerWorkgroup: 256,
  maxStorageBufferBindingSize: 128 * 1024 * 1024,
} as const;

export class NoAdapterError extends Error {
  constructor(detail: string) {
    super(
      `No WebGPU adapter was found (${detail}).\n` +
        'On Linux without a GPU, nerfad runs on Mesa lavapipe (Vulkan on the CPU). Install it with:\n' +
        '  sudo bash scripts/setup-system.sh\n' +
        '(On Debian bookworm this enables bookworm-backports: bookworm\'s own Mesa 22.3 is too old for Dawn.)',
    );
    this.name = 'NoAdapterError';
  }
}

// Kept for the life of the process on purpose (see the header).
let dawnInstance: GPU | null = null;
let gpuPromise: Promise<Gpu> | null = null;
let lostReason: string | null = null;

/** Dawn's Vulkan loader wants a writable XDG_RUNTIME_DIR; an unset or unwritable one must not break start-up. */
function ensureRuntimeDir(): void {
  const current = process.env.XDG_RUNTIME_DIR;
  if (current) {
    try {
      accessSync(current, fsConstants.W_OK);
      return;
    } catch {
      /* fall through and use our own */
    }
  }
  const dir = join(tmpdir(), `nerfad-xdg-${process.getuid?.() ?? 'user'}`);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  process.env.XDG_RUNTIME_DIR = dir;
}

export function deviceLostReason(): string | null {
  return lostReason;
}

/** The process-wide GPU. The first call creates it; later calls share it. */
export function getGpu(): Promise<Gpu> {
  gpuPromise ??= createGpu();
  return gpuPromise;
}

async function createGpu(): Promise<Gpu> {
  ensureRuntimeDir();
  Object.assign(globalThis, globals);
  dawnInstance = create([]);
  const adapter = await dawnInstance.requestAdapter({ powerPreference: 'high-performance' });
  if (!adapter) throw new NoAdapterError('requestAdapter() returned null');

  const requiredLimits: Record<string, number> = {};
  for (const [name, wanted] of Object.entries(REQUIRED_LIMITS)) {
    const available = (adapter.limits as unknown as Record<string, number>)[name];
    if (available < wanted) {
      throw new Error(`WebGPU adapter limit ${name} is ${available}, nerfad needs at least ${wanted}.`);
    }
    // Ask for everything the adapter offers up to a generous cap: bigger batches need bigger bindings.
    requiredLimits[name] = name === 'maxStorageBufferBindingSize' ? Math.min(available, 1 << 30) : available;
  }
  requiredLimits.maxBufferSize = Math.min(adapter.limits.maxBufferSize, 1 << 30);

  const wantedFeatures = ['timestamp-query', 'subgroups', 'shader-f16'].filter((f) => adapter.features.has(f));
  const device = await adapter.requestDevice({
    requiredLimits,
    requiredFeatures: wantedFeatures as GPUFeatureName[],
  });
  device.lost.then((info) => {
    lostReason = `${info.reason}: ${info.message}`;
  });

  const info = adapter.info;
  const description = info.description || [info.vendor, info.architecture, info.device].filter(Boolean).join(' ');
  const isSoftware = /llvmpipe|lavapipe|swiftshader|software/i.test(
    `${info.description} ${info.architecture} ${info.device}`,
  );
  return {
    device,
    adapter,
    adapterName: description.replace(/\s+0\.0\.1$/, ''),
    isSoftware,
    features: new Set([...device.features]),
  };
}

/** One line for logs and benchmark tables. */
export function describeGpu(gpu: Gpu): string {
  const l = gpu.device.limits;
  return (
    `${gpu.adapterName}${gpu.isSoftware ? ' [software]' : ''}; storage buffers/stage ${l.maxStorageBuffersPerShaderStage}, ` +
    `workgroup storage ${l.maxComputeWorkgroupStorageSize} B, max binding ${(l.maxStorageBufferBindingSize / 2 ** 20).toFixed(0)} MiB`
  );
}
