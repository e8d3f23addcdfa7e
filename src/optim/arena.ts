/**
 * The flat parameter arena: every parameter an optimizer manages lives in ONE f32 buffer, so that one dispatch can
 * update them all (tiny-cuda-nn keeps a single `params` vector the same way), and the gradients, Adam's moments and
 * an EMA shadow are further flat buffers with the same layout.
 *
 * Layout: parameters are laid out group by group, in the order given. Each parameter starts at an element offset
 * that is a multiple of `alignElements` (the device's minStorageBufferOffsetAlignment / 4, so a parameter's slice
 * can be bound on its own), and its segment is padded up to the next such multiple. The padding is zero in every
 * flat buffer and stays zero under Adam (zero gradient, zero moment, zero weight). A group ends where its last
 * padded segment ends; the next group starts there.
 *
 *   | group 0: p0 ··pad·· | p1 ·pad· | group 1: p2 ····pad···· | ...
 *   0                                ^ groupEnds[0]             ^ groupEnds[1] = totalElements
 */
import { runtime } from '../kernels/runtime/runtime.ts';
import { Storage, Tensor, allocStorage } from '../tensor/tensor.ts';
import { keep } from '../tensor/scope.ts';

export interface ArenaSegment {
  readonly tensor: Tensor;
  /** Element offset of the parameter in every flat buffer. */
  readonly offset: number;
  /** Elements of the parameter (its size). */
  readonly length: number;
  readonly group: number;
}

function roundUp(n: number, multiple: number): number {
  return Math.ceil(n / multiple) * multiple;
}

export class FlatLayout {
  readonly segments: readonly ArenaSegment[];
  /** One past the last element of each group. */
  readonly groupEnds: readonly number[];
  readonly totalElements: number;
  readonly alignElements: number;
  private readonly byTensor = new Map<Tensor, ArenaSegment>();

  constructor(groups: readonly (readonly Tensor[])[], alignElements: number, owner = 'optimizer') {
    // Adam reads vec4s: a multiple of 4 keeps every segment and group end vec4-aligned.
    this.alignElements = roundUp(Math.max(4, alignElements), 4);
    const segments: ArenaSegment[] = [];
    const groupEnds: number[] = [];
    let offset = 0;
    groups.forEach((tensors, group) => {
      for (const tensor of tensors) {
        if (tensor.isDisposed) throw new Error(`${owner}: parameter ${tensor} (group ${group}) was disposed`);
        if (tensor.dtype !== 'f32') throw new Error(`${owner}: parameter ${tensor} (group ${group}) must be f32, is ${tensor.dtype}`);
        const previous = this.byTensor.get(tensor);
        if (previous) {
          throw new Error(`${owner}: parameter ${tensor} appears twice (groups ${previous.group} and ${group})`);
        }
        const segment: ArenaSegment = { tensor, offset, length: tensor.size, group };
        segments.push(segment);
        this.byTensor.set(tensor, segment);
        offset += roundUp(Math.max(1, tensor.size), this.alignElements);
      }
      groupEnds.push(offset);
    });
    this.segments = segments;
    this.groupEnds = groupEnds;
    this.totalElements = Math.max(offset, this.alignElements);
    const maxBinding = runtime().device.limits.maxStorageBufferBindingSize;
    if (this.totalElements * 4 > maxBinding) {
      throw new Error(
        `${owner}: ${segments.length} parameters need ${this.totalElements * 4} bytes in one flat buffer, more than the ` +
          `device's maxStorageBufferBindingSize (${maxBinding} bytes)`,
      );
    }
  }

  segmentOf(tensor: Tensor): ArenaSegment | undefined {
    return this.byTensor.get(tensor);
  }

  /** A zero-filled flat buffer with this layout (one reference, owned by the caller). */
  allocateZeroed(): Storage {
    const storage = allocStorage(this.totalElements);
    runtime().clear(storage.view);
    return storage;
  }

  /** Storage for one parameter's slice of `flat`; it holds a reference to `flat` until released. */
  sliceStorage(flat: Storage, segment: ArenaSegment): Storage {
    const base = flat.view;
    flat.retain();
    const view = { pooled: base.pooled, offset: base.offset + segment.offset * 4, size: Math.max(4, segment.length * 4) };
    return new Storage(view, () => flat.release());
  }

  /** A tensor (the parameter's shape) viewing its slice of `flat`; kept out of scopes, disposed by the caller. */
  sliceTensor(flat: Storage, segment: ArenaSegment): Tensor {
    const t = keep(new Tensor(this.sliceStorage(flat, segment), segment.tensor.shape));
    t.name = segment.tensor.name;
    return t;
  }
}
