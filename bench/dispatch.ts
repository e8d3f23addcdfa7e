/**
 * Dispatch overhead: µs per dispatch of a tiny kernel (accumulate over 64 floats), encoded many at a time into one
 * submit (the engine's normal mode), with a submit after each dispatch, and with a submit and an await after each.
 * Also the host cost alone: encoding a dispatch (uniform packing, bind-group lookup) without waiting for anything.
 */
import { readFileSync } from 'node:fs';
import * as nd from '../src/index.ts';
import { runtime } from '../src/index.ts';
import { accumulateKernel } from '../src/kernels/elementwise/binary.ts';
import { median } from './timing.ts';

export interface DispatchRow {
  mode: string;
  usPerDispatch: number;
}

export async function benchDispatch(count = 2000, reps = 5): Promise<DispatchRow[]> {
  const rt = runtime();
  const addend = nd.ones([64]);
  const acc = nd.zeros([64]);
  const one = (): void => rt.dispatch(accumulateKernel, undefined, [addend.view, acc.view], { n: 64 }, 64);
  const saved = rt.autoFlushEvery;
  rt.autoFlushEvery = Number.MAX_SAFE_INTEGER;
  await rt.sync();
  one();
  await rt.sync();

  const measure = async (body: () => Promise<void>): Promise<number> => {
    const samples: number[] = [];
    for (let r = 0; r < reps; r++) {
      await rt.sync();
      const t0 = performance.now();
      await body();
      samples.push(((performance.now() - t0) * 1000) / count);
    }
    return median(samples);
  };
  const rows: DispatchRow[] = [];
  let encodeUs = 0;
  rows.push({
    mode: `batched: ${count} dispatches, one submit per ${Math.min(count, 1024)} (uniform ring), then await`,
    usPerDispatch: await measure(async () => {
      const t0 = performance.now();
      for (let i = 0; i < count; i++) one();
      encodeUs = ((performance.now() - t0) * 1000) / count;
      await rt.sync();
    }),
  });
  rows.push({ mode: 'host only: encoding one dispatch (from the batched run)', usPerDispatch: encodeUs });
  rows.push({
    mode: 'submit each dispatch, await at the end',
    usPerDispatch: await measure(async () => {
      for (let i = 0; i < count; i++) {
        one();
        rt.flush();
      }
      await rt.sync();
    }),
  });
  const awaitedCount = Math.min(count, 300);
  const awaited: number[] = [];
  for (let r = 0; r < reps; r++) {
    const t0 = performance.now();
    for (let i = 0; i < awaitedCount; i++) {
      one();
      await rt.sync();
    }
    awaited.push(((performance.now() - t0) * 1000) / awaitedCount);
  }
  rows.push({ mode: 'submit and sync each dispatch (runtime().sync(): the probed wait)', usPerDispatch: median(awaited) });
  rt.autoFlushEvery = saved;
  addend.dispose();
  acc.dispose();
  return rows;
}

export interface WaitRow {
  mode: string;
  wallMs: number;
  /** CPU milliseconds of node's main thread during the wait (Linux: /proc; null elsewhere). */
  mainThreadMs: number | null;
}

/** CPU milliseconds node's main thread has used (utime + stime of its task), or null where /proc is missing. */
function mainThreadCpuMs(): number | null {
  try {
    const fields = readFileSync(`/proc/self/task/${process.pid}/stat`, 'utf8').split(') ')[1].split(' ');
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / 100; // clock ticks of 10 ms (USER_HZ)
  } catch {
    return null;
  }
}

/**
 * Waiting on long GPU work (`dispatches` accumulations over 2^22 floats, then a 4-byte read): the runtime's probed
 * wait against awaiting the map directly. On lavapipe the direct await keeps node's main thread polling a full core,
 * which the GPU's worker threads then lack.
 */
export async function benchWaiting(dispatches = 200, reps = 3): Promise<WaitRow[]> {
  const rt = runtime();
  const n = 1 << 22;
  const addend = nd.ones([n]);
  const acc = nd.zeros([n]);
  const queue = (): void => {
    for (let i = 0; i < dispatches; i++) rt.dispatch(accumulateKernel, undefined, [addend.view, acc.view], { n }, n);
  };
  queue();
  await rt.sync();
  const staging = rt.device.createBuffer({ size: 4, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
  const modes: [string, () => Promise<void>][] = [
    ['runtime read (probed: map, two event-loop turns, abort, sleep ≤ 4 ms)', async () => void (await nd.narrow(acc, 0, 0, 1).data())],
    [
      'await mapAsync directly',
      async () => {
        const encoder = rt.device.createCommandEncoder();
        encoder.copyBufferToBuffer(acc.view.pooled.buffer, acc.view.offset, staging, 0, 4);
        rt.flush();
        rt.device.queue.submit([encoder.finish()]);
        await staging.mapAsync(GPUMapMode.READ);
        staging.unmap();
      },
    ],
  ];
  const rows: WaitRow[] = [];
  for (const [mode, wait] of modes) {
    const wall: number[] = [];
    const main: number[] = [];
    for (let r = 0; r < reps; r++) {
      queue();
      const cpu0 = mainThreadCpuMs();
      const t0 = performance.now();
      await wait();
      wall.push(performance.now() - t0);
      const cpu1 = mainThreadCpuMs();
      if (cpu0 !== null && cpu1 !== null) main.push(cpu1 - cpu0);
    }
    rows.push({ mode, wallMs: median(wall), mainThreadMs: main.length ? median(main) : null });
  }
  staging.destroy();
  addend.dispose();
  acc.dispose();
  return rows;
}
