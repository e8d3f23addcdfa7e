/**
 * Dispatch overhead: µs per dispatch of a tiny kernel (accumulate over 64 floats), encoded many at a time into one
 * submit (the engine's normal mode), with a submit after each dispatch, and with a submit and an await after each.
 * Also the host cost alone: encoding a dispatch (uniform packing, bind-group lookup) without waiting for anything.
 */
import * as nd from '../src/index.ts';
import { runtime } from '../src/index.ts';
import { accumulateKernel } from '../src/kernels/elementwise/binary.ts';
import { median, sleep } from './timing.ts';

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
      rt.flush();
      await sleep(count * 0.015);
      await rt.device.queue.onSubmittedWorkDone();
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
      await sleep(count * 0.02);
      await rt.device.queue.onSubmittedWorkDone();
    }),
  });
  const awaitedCount = Math.min(count, 300);
  const awaited: number[] = [];
  for (let r = 0; r < reps; r++) {
    const t0 = performance.now();
    for (let i = 0; i < awaitedCount; i++) {
      one();
      rt.flush();
      await rt.device.queue.onSubmittedWorkDone();
    }
    awaited.push(((performance.now() - t0) * 1000) / awaitedCount);
  }
  rows.push({ mode: 'submit and await each dispatch', usPerDispatch: median(awaited) });
  rt.autoFlushEvery = saved;
  addend.dispose();
  acc.dispose();
  return rows;
}
