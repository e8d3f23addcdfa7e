/**
 * The device layer's queue: one open command encoder, a uniform ring, cached bind groups, async readback.
 *
 * Work is encoded as it is asked for and submitted only when data is awaited (`read`), on an explicit `flush()`,
 * or automatically every `autoFlushEvery` dispatches (so lavapipe's threads start on a long step before it is
 * fully encoded). No kernel submits on its own and nothing here waits on the GPU except `read`.
 *
 * Ordering: `queue.writeBuffer` runs on the queue timeline *before* the not-yet-submitted encoder, so an upload
 * into a buffer that pending commands still use goes through a staging copy encoded in order; an upload into an
 * untouched buffer is written directly.
 *
 * Waiting: while any Dawn promise is pending, dawn.node polls its events from node's main thread without pause
 * (a full core), which on 2 cores steals one from lavapipe's workers. So `read` and `sync` never leave a promise
 * pending for long: they probe — map the readback buffer, give Dawn two turns of the event loop, and if the copy
 * has not finished, abort the map (`unmap`) and sleep a little longer (`mapWhenDone`). Measured on the 2-core
 * lavapipe machine: the same queued work finished in 1.42 s instead of 2.1 s awaited, with 50 ms of main-thread
 * CPU instead of 1.3–1.5 s; fit-scene's training step went from 372 to 160–190 ms. (An earlier version slept for
 * a learned estimate of the GPU time and then awaited; probing needs no estimate and cannot oversleep by more
 * than MAX_POLL_MS.)
 */
import { BufferPool, sizeClass, type PooledBuffer } from './pool.ts';
import { PipelineCache, type Kernel, type CompiledKernel } from './kernel.ts';
import { deviceLostReason, getGpu, type Gpu } from './gpu.ts';

/** A byte range of a pooled buffer: what a tensor's storage is and what a kernel binds. */
export interface BufferView {
  readonly pooled: PooledBuffer;
  /** Byte offset into the buffer (a multiple of the device's minStorageBufferOffsetAlignment). */
  readonly offset: number;
  /** Bytes (a multiple of 4). */
  readonly size: number;
}

export interface RuntimeStats {
  dispatches: number;
  submits: number;
  readbacks: number;
  uploads: number;
  stagedUploads: number;
}

const MAX_WORKGROUPS_PER_DIM = 65535;
const RING_SLOTS = 1024;
/** Probing for completion: the first pause, its growth per probe, and the longest (the latency it can add). */
const FIRST_POLL_MS = 0.25;
/** The first probe keeps its map pending (polling) this long before it aborts and sleeps. */
const FIRST_PROBE_MS = 0.5;
const POLL_GROWTH = 1.5;
const MAX_POLL_MS = 4;

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function nextTurn(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

export class Runtime {
  readonly device: GPUDevice;
  readonly pool: BufferPool;
  readonly pipelines: PipelineCache;
  /** Submit after this many dispatches even if nobody awaits (measured in `npm run bench`). */
  autoFlushEvery = 64;
  readonly stats: RuntimeStats = { dispatches: 0, submits: 0, readbacks: 0, uploads: 0, stagedUploads: 0 };

  private encoder: GPUCommandEncoder | null = null;
  private pass: GPUComputePassEncoder | null = null;
  private dispatchesInEncoder = 0;
  /** Buffer ids used by commands in the open encoder (uploads into these must be staged). */
  private readonly touched = new Set<number>();
  /** Writes encoded into each pooled buffer (by id): `writeCount` lets a cache of derived data see a change. */
  private readonly writes = new Map<number, number>();
  private readonly slotBytes: number;
  private readonly ring: GPUBuffer;
  private readonly ringData: ArrayBuffer;
  private readonly ringU32: Uint32Array;
  private readonly ringI32: Int32Array;
  private readonly ringF32: Float32Array;
  private ringSlotsUsed = 0;
  private readonly bindGroups = new Map<string, GPUBindGroup>();
  private readonly stagingToDestroy: GPUBuffer[] = [];
  private readonly readbackPool = new Map<number, GPUBuffer[]>();
  private readonly scopeErrors: Promise<GPUError | null>[] = [];


  constructor(readonly gpu: Gpu) {
    this.device = gpu.device;
    this.pool = new BufferPool(this.device);
    this.pipelines = new PipelineCache(this.device);
    this.slotBytes = Math.max(256, this.device.limits.minUniformBufferOffsetAlignment);
    this.ring = this.device.createBuffer({
      size: this.slotBytes * RING_SLOTS,
      // COPY_SRC: `sync` copies 4 bytes of it behind the queued work, to probe for completion.
      usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST | GPUBufferUsage.COPY_SRC,
      label: 'uniform-ring',
    });
    this.ringData = new ArrayBuffer(this.slotBytes * RING_SLOTS);
    this.ringU32 = new Uint32Array(this.ringData);
    this.ringI32 = new Int32Array(this.ringData);
    this.ringF32 = new Float32Array(this.ringData);
  }

  get storageAlignment(): number {
    return this.device.limits.minStorageBufferOffsetAlignment;
  }

  private checkDevice(): void {
    const lost = deviceLostReason();
    if (lost) throw new Error(`The GPU device was lost (${lost}); restart the process.`);
  }

  private openEncoder(): GPUCommandEncoder {
    this.checkDevice();
    if (this.pass) {
      this.pass.end();
      this.pass = null;
    }
    if (!this.encoder) {
      this.device.pushErrorScope('validation');
      this.device.pushErrorScope('out-of-memory');
      this.encoder = this.device.createCommandEncoder();
    }
    return this.encoder;
  }

  private openPass(): GPUComputePassEncoder {
    if (this.pass) return this.pass;
    this.pass = this.openEncoder().beginComputePass();
    return this.pass;
  }

  /** Splits a 1-D thread count into a workgroup grid whose x fits the per-dimension limit. */
  static grid1D(threads: number, workgroupSize: number): [number, number, number] {
    const groups = Math.max(1, Math.ceil(threads / workgroupSize));
    if (groups <= MAX_WORKGROUPS_PER_DIM) return [groups, 1, 1];
    const y = Math.ceil(groups / MAX_WORKGROUPS_PER_DIM);
    return [Math.ceil(groups / y), y, 1];
  }

  /**
   * Encodes one dispatch. `buffers` follow the kernel's `bindings` order; `params` give every scalar the kernel
   * declares. `workgroups` is the grid, or a thread count for 1-D kernels (then folded with `grid1D`).
   */
  dispatch<C>(
    kernel: Kernel<C>,
    consts: C,
    buffers: readonly BufferView[],
    params: Readonly<Record<string, number>>,
    workgroups: number | readonly [number, number, number],
  ): void {
    const compiled = this.pipelines.get(kernel, consts);
    if (buffers.length !== compiled.bindingCount) {
      throw new Error(`kernel ${kernel.name}: expected ${compiled.bindingCount} buffers, got ${buffers.length}`);
    }
    if (this.ringSlotsUsed === RING_SLOTS) this.flush();
    const slot = this.ringSlotsUsed++;
    this.writeParams(compiled, slot, params);

    const pass = this.openPass();
    pass.setPipeline(compiled.pipeline);
    pass.setBindGroup(0, this.bindGroup(compiled, buffers), [slot * this.slotBytes]);
    const grid = typeof workgroups === 'number' ? Runtime.grid1D(workgroups, compiled.workgroupSize) : workgroups;
    for (const b of buffers) this.touched.add(b.pooled.id);
    this.countWrites(kernel, buffers);
    pass.dispatchWorkgroups(grid[0], grid[1], grid[2]);
    this.stats.dispatches += 1;
    this.dispatchesInEncoder += 1;
    if (this.dispatchesInEncoder >= this.autoFlushEvery) this.flush();
  }

  /**
   * Encodes one dispatch whose workgroup grid is read on the GPU from `indirect` (three u32: x, y, z at byte
   * `offset`, a multiple of 4) — written by an earlier kernel, so sizes known only on the GPU (a sample count) need
   * no readback. The kernel must still bound-check its threads against a count it reads itself.
   */
  dispatchIndirect<C>(
    kernel: Kernel<C>,
    consts: C,
    buffers: readonly BufferView[],
    params: Readonly<Record<string, number>>,
    indirect: BufferView,
    offset = 0,
  ): void {
    const compiled = this.pipelines.get(kernel, consts);
    if (buffers.length !== compiled.bindingCount) {
      throw new Error(`kernel ${kernel.name}: expected ${compiled.bindingCount} buffers, got ${buffers.length}`);
    }
    if (offset % 4 !== 0 || offset + 12 > indirect.size) {
      throw new Error(`kernel ${kernel.name}: indirect arguments at byte ${offset} do not fit a view of ${indirect.size} bytes`);
    }
    if (this.ringSlotsUsed === RING_SLOTS) this.flush();
    const slot = this.ringSlotsUsed++;
    this.writeParams(compiled, slot, params);

    const pass = this.openPass();
    pass.setPipeline(compiled.pipeline);
    pass.setBindGroup(0, this.bindGroup(compiled, buffers), [slot * this.slotBytes]);
    for (const b of buffers) this.touched.add(b.pooled.id);
    this.touched.add(indirect.pooled.id);
    this.countWrites(kernel, buffers);
    pass.dispatchWorkgroupsIndirect(indirect.pooled.buffer, indirect.offset + offset);
    this.stats.dispatches += 1;
    this.dispatchesInEncoder += 1;
    if (this.dispatchesInEncoder >= this.autoFlushEvery) this.flush();
  }

  private countWrites<C>(kernel: Kernel<C>, buffers: readonly BufferView[]): void {
    buffers.forEach((b, i) => {
      if (kernel.bindings[i].access === 'rw') this.wrote(b);
    });
  }

  private wrote(view: BufferView): void {
    this.writes.set(view.pooled.id, (this.writes.get(view.pooled.id) ?? 0) + 1);
  }

  /**
   * How many writes into the view's buffer have been encoded so far (kernel bindings declared 'rw', uploads,
   * copies, clears): unchanged means the contents are unchanged, so data derived from them can be reused.
   */
  writeCount(view: BufferView): number {
    return this.writes.get(view.pooled.id) ?? 0;
  }

  private writeParams(compiled: CompiledKernel, slot: number, params: Readonly<Record<string, number>>): void {
    const base = (slot * this.slotBytes) / 4;
    compiled.params.forEach((p, i) => {
      const value = params[p.name];
      if (value === undefined || Number.isNaN(value) && p.type !== 'f32') {
        throw new Error(`kernel ${compiled.kernelName}: parameter '${p.name}' was not given`);
      }
      if (p.type === 'u32') this.ringU32[base + i] = value;
      else if (p.type === 'i32') this.ringI32[base + i] = value;
      else this.ringF32[base + i] = value;
    });
  }

  private bindGroup(compiled: CompiledKernel, buffers: readonly BufferView[]): GPUBindGroup {
    let key = compiled.key;
    for (const b of buffers) key += `|${b.pooled.id}:${b.offset}:${b.size}`;
    let group = this.bindGroups.get(key);
    if (!group) {
      if (this.bindGroups.size > 8192) this.bindGroups.clear();
      const entries: GPUBindGroupEntry[] = buffers.map((b, i) => ({
        binding: i,
        resource: { buffer: b.pooled.buffer, offset: b.offset, size: Math.max(4, b.size) },
      }));
      entries.push({ binding: buffers.length, resource: { buffer: this.ring, offset: 0, size: this.slotBytes } });
      group = this.device.createBindGroup({ layout: compiled.layout, entries });
      this.bindGroups.set(key, group);
    }
    return group;
  }

  /** Forgets cached bind groups that name a buffer (call before destroying it). */
  forgetBuffer(id: number): void {
    for (const key of this.bindGroups.keys()) if (key.includes(`|${id}:`)) this.bindGroups.delete(key);
  }

  /** Writes host data into a view, ordered after every command already encoded. */
  upload(view: BufferView, data: ArrayBufferView): void {
    this.checkDevice();
    let bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    if (bytes.byteLength > view.size) throw new Error(`upload of ${bytes.byteLength} bytes into a view of ${view.size}`);
    if (bytes.byteLength % 4 !== 0) {
      const padded = new Uint8Array(Math.ceil(bytes.byteLength / 4) * 4);
      padded.set(bytes);
      bytes = padded;
    }
    this.stats.uploads += 1;
    this.wrote(view);
    if (!this.touched.has(view.pooled.id)) {
      this.device.queue.writeBuffer(view.pooled.buffer, view.offset, bytes.buffer, bytes.byteOffset, bytes.byteLength);
      return;
    }
    this.stats.stagedUploads += 1;
    const staging = this.device.createBuffer({ size: bytes.byteLength, usage: GPUBufferUsage.COPY_SRC, mappedAtCreation: true });
    new Uint8Array(staging.getMappedRange()).set(bytes);
    staging.unmap();
    this.openEncoder().copyBufferToBuffer(staging, 0, view.pooled.buffer, view.offset, bytes.byteLength);
    this.touched.add(view.pooled.id);
    this.stagingToDestroy.push(staging);
  }

  copy(src: BufferView, dst: BufferView, bytes = Math.min(src.size, dst.size)): void {
    this.openEncoder().copyBufferToBuffer(src.pooled.buffer, src.offset, dst.pooled.buffer, dst.offset, bytes);
    this.touched.add(src.pooled.id);
    this.touched.add(dst.pooled.id);
    this.wrote(dst);
  }

  /** Fills a view with zero bytes, in order with encoded work. */
  clear(view: BufferView): void {
    this.openEncoder().clearBuffer(view.pooled.buffer, view.offset, view.size);
    this.touched.add(view.pooled.id);
    this.wrote(view);
  }

  /** Submits everything encoded so far. Cheap when nothing is pending. */
  flush(): void {
    if (!this.encoder) return;
    if (this.pass) {
      this.pass.end();
      this.pass = null;
    }
    if (this.ringSlotsUsed > 0) {
      this.device.queue.writeBuffer(this.ring, 0, this.ringData, 0, this.ringSlotsUsed * this.slotBytes);
    }
    this.device.queue.submit([this.encoder.finish()]);
    this.scopeErrors.push(this.device.popErrorScope(), this.device.popErrorScope());
    this.encoder = null;
    this.dispatchesInEncoder = 0;
    this.ringSlotsUsed = 0;
    this.touched.clear();
    for (const b of this.stagingToDestroy) b.destroy();
    this.stagingToDestroy.length = 0;
    this.stats.submits += 1;
  }

  /** Number of dispatches encoded but not yet submitted. */
  get pendingDispatches(): number {
    return this.dispatchesInEncoder;
  }

  private acquireReadback(bytes: number): GPUBuffer {
    const capacity = sizeClass(bytes);
    const hit = this.readbackPool.get(capacity)?.pop();
    return hit ?? this.device.createBuffer({ size: capacity, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
  }

  private releaseReadback(buffer: GPUBuffer): void {
    let list = this.readbackPool.get(buffer.size);
    if (!list) this.readbackPool.set(buffer.size, (list = []));
    list.push(buffer);
  }

  /** Copies a view to the host. The only way data leaves the GPU; it submits pending work. */
  async read(view: BufferView): Promise<ArrayBuffer> {
    const staging = this.acquireReadback(view.size);
    this.openEncoder().copyBufferToBuffer(view.pooled.buffer, view.offset, staging, 0, view.size);
    this.flush();
    this.stats.readbacks += 1;
    await this.mapWhenDone(staging);
    await this.throwPendingErrors();
    const copy = staging.getMappedRange(0, view.size).slice(0);
    staging.unmap();
    this.releaseReadback(staging);
    return copy;
  }

  /**
   * Maps `staging` once the GPU has finished the copy into it, without keeping a Dawn promise pending (which
   * would busy-poll the main thread): each probe maps, lets Dawn process events for two turns of the event loop
   * (the first probe for up to FIRST_PROBE_MS), and if the map is still pending aborts it (unmap rejects it with an AbortError) and sleeps before the next,
   * the pauses growing from FIRST_POLL_MS to MAX_POLL_MS.
   */
  private async mapWhenDone(staging: GPUBuffer): Promise<void> {
    let pause = FIRST_POLL_MS;
    let first = true;
    for (;;) {
      let settled = false;
      const mapped = staging.mapAsync(GPUMapMode.READ).then(
        () => ((settled = true), null),
        (error: unknown) => ((settled = true), error),
      );
      // Short waits (a small read on an idle queue takes ~0.2 ms) finish within the first probe's turns.
      const turnsUntil = performance.now() + (first ? FIRST_PROBE_MS : 0);
      do await nextTurn();
      while (!settled && performance.now() < turnsUntil);
      if (!settled) await nextTurn();
      first = false;
      if (!settled) {
        // The abort rejects the map (or, had it just resolved, the unmap undoes it and the next probe maps at once);
        // a lost device is the one failure that would repeat, so it is checked here.
        staging.unmap();
        await mapped;
        this.checkDevice();
        await sleep(pause);
        pause = Math.min(pause * POLL_GROWTH, MAX_POLL_MS);
        continue;
      }
      const error = await mapped;
      if (error !== null) throw error;
      return;
    }
  }

  /** Waits for all submitted work (flushes first), without busy-polling: a 4-byte copy behind it is probed. */
  async sync(): Promise<void> {
    const staging = this.acquireReadback(4);
    this.openEncoder().copyBufferToBuffer(this.ring, 0, staging, 0, 4);
    this.flush();
    await this.mapWhenDone(staging);
    staging.unmap();
    this.releaseReadback(staging);
    await this.throwPendingErrors();
  }

  private async throwPendingErrors(): Promise<void> {
    const compileErrors = (await Promise.all(this.pipelines.pendingChecks.splice(0))).filter((e) => e !== null);
    if (compileErrors.length > 0) {
      this.scopeErrors.length = 0; // the pipeline errors that follow from these say nothing more
      throw new Error(compileErrors.join('\n'));
    }
    if (this.scopeErrors.length === 0) return;
    const errors = (await Promise.all(this.scopeErrors.splice(0))).filter((e): e is GPUError => e !== null);
    if (errors.length > 0) throw new Error(`GPU error: ${errors.map((e) => e.message).join('\n')}`);
    this.checkDevice();
  }
}

let runtimePromise: Promise<Runtime> | null = null;
let runtimeInstance: Runtime | null = null;

/** Initialises the process-wide runtime. Call once (await) before creating tensors. */
export function initRuntime(): Promise<Runtime> {
  runtimePromise ??= getGpu().then((gpu) => (runtimeInstance = new Runtime(gpu)));
  return runtimePromise;
}

/** The runtime, for synchronous code after `initRuntime()` resolved. */
export function runtime(): Runtime {
  if (!runtimeInstance) throw new Error('nerfad: call `await initRuntime()` (or `await nerfad.init()`) before using tensors.');
  return runtimeInstance;
}
