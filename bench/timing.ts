/**
 * Timing helpers for the benchmarks. Figures are medians of several repetitions (the machines are shared and noisy).
 *
 * GPU work is timed from submit to `runtime().sync()`, which probes for completion without busy-polling (awaiting
 * a Dawn promise would poll node's main thread, stealing one of a 2-core machine's cores from lavapipe's workers).
 */
import { runtime } from '../src/index.ts';

export function median(values: readonly number[]): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

export interface Timing {
  /** Median milliseconds per repetition. */
  ms: number;
  /** Every repetition, in milliseconds. */
  samples: number[];
  /**
   * Median CPU milliseconds this process used per repetition (all its threads: lavapipe's workers run inside it).
   * Other processes on a shared machine stretch `ms` but barely change this, so ratios of CPU-time rates between
   * two kernels of one adapter survive a noisy machine. Meaningless for real GPUs.
   */
  cpuMs: number;
}

function cpuMsSince(start: NodeJS.CpuUsage): number {
  const used = process.cpuUsage(start);
  return (used.user + used.system) / 1000;
}

/**
 * Times `enqueue` (which queues GPU work without waiting) from submit to completion. The first call (pipeline
 * compilation, buffer allocation) is a warm-up and not counted.
 */
export async function timeGpu(enqueue: () => void, reps: number, warmup = 1): Promise<Timing> {
  const rt = runtime();
  for (let w = 0; w < warmup; w++) {
    enqueue();
    await rt.sync(); // compiles pipelines; also surfaces shader compilation errors
  }
  const samples: number[] = [];
  const cpuSamples: number[] = [];
  for (let r = -1; r < reps; r++) {
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    enqueue();
    await rt.sync();
    const t = performance.now() - t0;
    if (r < 0) continue;
    cpuSamples.push(cpuMsSince(cpu0));
    samples.push(t);
  }
  return { ms: median(samples), samples, cpuMs: median(cpuSamples) };
}

/** Times a host computation (synchronous or returning a promise), after `warmup` uncounted calls. */
export async function timeHost(run: () => unknown, reps: number, warmup = 1): Promise<Timing> {
  for (let w = 0; w < warmup; w++) await run();
  const samples: number[] = [];
  const cpuSamples: number[] = [];
  for (let r = 0; r < reps; r++) {
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    await run();
    samples.push(performance.now() - t0);
    cpuSamples.push(cpuMsSince(cpu0));
  }
  return { ms: median(samples), samples, cpuMs: median(cpuSamples) };
}

/** GFLOP/s of an N×N×N matmul taking `ms` milliseconds: 2·N³ / t. */
export const matmulGflops = (N: number, ms: number): number => (2 * N ** 3) / (ms * 1e6);
