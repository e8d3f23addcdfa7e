/**
 * GPU buffers by size class, released explicitly (never by the garbage collector).
 *
 * Sizes are rounded up to a class: powers of two split into four steps (1, 1.25, 1.5, 1.75 × 2^k), so buffers of
 * nearby sizes (NeRF sample counts vary per step) share free lists and at most 25% is wasted, while exact-size keys
 * (tfjs's BufferManager) would never reuse them. Every buffer is STORAGE | COPY_SRC | COPY_DST | INDIRECT: INDIRECT
 * lets any tensor hold workgroup counts for `dispatchIndirect` (written by a kernel from a GPU-side sample count)
 * without a second kind of allocation; it costs nothing on Vulkan (a usage bit) and keeps one pool.
 */

export interface PooledBuffer {
  readonly id: number;
  readonly buffer: GPUBuffer;
  /** Bytes of the underlying buffer (the size class). */
  readonly capacity: number;
}

export function sizeClass(bytes: number): number {
  const minimum = 256;
  if (bytes <= minimum) return minimum;
  const exponent = Math.floor(Math.log2(bytes));
  const base = 2 ** exponent;
  const quarter = base / 4;
  return base + Math.ceil((bytes - base) / quarter) * quarter;
}

export interface PoolStats {
  /** Bytes in all buffers ever created and not destroyed. */
  bytesAllocated: number;
  /** Bytes in buffers currently handed out. */
  bytesInUse: number;
  buffersAllocated: number;
  buffersInUse: number;
}

let nextBufferId = 1;

export class BufferPool {
  private readonly free = new Map<number, PooledBuffer[]>();
  private readonly stats: PoolStats = { bytesAllocated: 0, bytesInUse: 0, buffersAllocated: 0, buffersInUse: 0 };

  constructor(private readonly device: GPUDevice) {}

  acquire(bytes: number): PooledBuffer {
    const capacity = sizeClass(bytes);
    const list = this.free.get(capacity);
    let pooled = list?.pop();
    if (!pooled) {
      if (capacity > this.device.limits.maxBufferSize) {
        throw new Error(
          `A tensor of ${bytes} bytes exceeds the device's maxBufferSize (${this.device.limits.maxBufferSize} bytes).`,
        );
      }
      const buffer = this.device.createBuffer({
        size: capacity,
        usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST | GPUBufferUsage.INDIRECT,
      });
      pooled = { id: nextBufferId++, buffer, capacity };
      this.stats.bytesAllocated += capacity;
      this.stats.buffersAllocated += 1;
    }
    this.stats.bytesInUse += capacity;
    this.stats.buffersInUse += 1;
    return pooled;
  }

  release(pooled: PooledBuffer): void {
    this.stats.bytesInUse -= pooled.capacity;
    this.stats.buffersInUse -= 1;
    let list = this.free.get(pooled.capacity);
    if (!list) this.free.set(pooled.capacity, (list = []));
    list.push(pooled);
  }

  /** Destroys every free buffer (the ones in use stay). Returns the bytes given back. */
  trim(): number {
    let bytes = 0;
    for (const list of this.free.values()) {
      for (const pooled of list) {
        pooled.buffer.destroy();
        bytes += pooled.capacity;
        this.stats.bytesAllocated -= pooled.capacity;
        this.stats.buffersAllocated -= 1;
      }
    }
    this.free.clear();
    return bytes;
  }

  getStats(): PoolStats {
    return { ...this.stats };
  }
}
