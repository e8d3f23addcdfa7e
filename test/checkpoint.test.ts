import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import * as nd from '../src/index.ts';

const dir = mkdtempSync(join(tmpdir(), 'nerfad-checkpoint-test-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Builds a safetensors file by hand, the way other writers (Python's safetensors) lay it out. */
function handMade(header: Record<string, unknown>, data: Uint8Array, pad = 0): Uint8Array {
  const json = new TextEncoder().encode(JSON.stringify(header) + ' '.repeat(pad));
  const out = new Uint8Array(8 + json.length + data.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
  out.set(json, 8);
  out.set(data, 8 + json.length);
  return out;
}

const bytesOf = (a: Float32Array | Float64Array | Int32Array): Uint8Array => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);

describe('safetensors format', () => {
  const tensors = new Map<string, nd.HostTensor>([
    ['b.weight', { dtype: 'F32', shape: [2, 3], data: Float32Array.of(1, -2, 3.5, 0, 1e-30, -7) }],
    ['a.index', { dtype: 'I32', shape: [3], data: Int32Array.of(-1, 0, 2147483647) }],
    ['a.count', { dtype: 'U32', shape: [], data: Uint32Array.of(4294967295) }],
    ['empty', { dtype: 'F32', shape: [0, 4], data: new Float32Array(0) }],
  ]);

  it('round-trips F32/I32/U32, scalars and empty tensors with metadata', () => {
    const bytes = nd.encodeSafetensors(tensors, { step: '12', note: 'hello' });
    const file = nd.decodeSafetensors(bytes, 'mem');
    expect([...file.tensors.keys()].sort()).toEqual([...tensors.keys()].sort());
    for (const [name, t] of tensors) {
      const back = file.tensors.get(name)!;
      expect(back.dtype).toBe(t.dtype);
      expect(back.shape).toEqual(t.shape);
      expect([...back.data]).toEqual([...t.data]);
    }
    expect(file.metadata.step).toBe('12');
    expect(file.metadata.note).toBe('hello');
  });

  it('lays bytes out as the format says: u64 LE header length, JSON header, 8-aligned little-endian data', () => {
    const bytes = nd.encodeSafetensors(tensors, {});
    const n = Number(new DataView(bytes.buffer).getBigUint64(0, true));
    expect((8 + n) % 8).toBe(0);
    const header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + n)));
    expect(header['b.weight']).toEqual({ dtype: 'F32', shape: [2, 3], data_offsets: [expect.any(Number), expect.any(Number)] });
    const [begin, end] = header['b.weight'].data_offsets;
    expect(end - begin).toBe(24);
    const view = new DataView(bytes.buffer, 8 + n + begin, 24);
    expect(view.getFloat32(8, true)).toBe(3.5);
    expect(header.__metadata__['nerfad.data_sha256']).toMatch(/^[0-9a-f]{64}$/);
    // Written in name order: offsets grow with the names.
    const names = Object.keys(header).filter((k) => k !== '__metadata__');
    const byOffset = [...names].sort((x, y) => header[x].data_offsets[0] - header[y].data_offsets[0]);
    expect(byOffset).toEqual([...names].sort());
  });

  it('reads files written by other tools (no checksum, padded header, F64 entries recorded but not converted)', () => {
    const w = Float32Array.of(0.25, -4);
    const d = Float64Array.of(Math.PI);
    const bytes = handMade(
      { __metadata__: { format: 'pt' }, w: { dtype: 'F32', shape: [2], data_offsets: [0, 8] }, d: { dtype: 'F64', shape: [1], data_offsets: [8, 16] } },
      new Uint8Array([...bytesOf(w), ...bytesOf(d)]),
      5,
    );
    const file = nd.decodeSafetensors(bytes, 'torch.safetensors');
    expect([...file.tensors.get('w')!.data]).toEqual([0.25, -4]);
    expect(file.tensors.get('d')!.dtype).toBe('F64');
    expect(file.metadata.format).toBe('pt');
  });

  it('names the file and what is wrong with a corrupt one', () => {
    const good = nd.encodeSafetensors(tensors, {});
    const decode = (bytes: Uint8Array) => () => nd.decodeSafetensors(bytes, 'run/ckpt.safetensors');
    expect(decode(good.subarray(0, 5))).toThrow('run/ckpt.safetensors: file is 5 bytes, too short for a safetensors header');
    expect(decode(good.subarray(0, good.length - 1))).toThrow(/run\/ckpt.safetensors: tensor '.*': data \[\d+, \d+\) runs past the end of the data/);
    const flipped = good.slice();
    flipped[flipped.length - 3] ^= 0x40;
    expect(decode(flipped)).toThrow('run/ckpt.safetensors: data checksum (nerfad.data_sha256) does not match: the file is corrupt');
    const huge = good.slice();
    new DataView(huge.buffer).setBigUint64(0, 1n << 40n, true);
    expect(decode(huge)).toThrow(/header length 1099511627776 exceeds the file's/);
    const garbage = handMade({}, new Uint8Array(0));
    garbage[8] = 0x7b; // '{' … '}' replaced below
    garbage[9] = 0x78;
    expect(decode(garbage)).toThrow(/header is not valid UTF-8 JSON/);
    const overlap = handMade(
      { a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] }, b: { dtype: 'F32', shape: [2], data_offsets: [4, 12] } },
      new Uint8Array(12),
    );
    expect(decode(overlap)).toThrow(/tensor 'b': data starts at byte 4, expected 8 \(ranges overlap or leave a gap\)/);
    const badSize = handMade({ a: { dtype: 'F32', shape: [3], data_offsets: [0, 8] } }, new Uint8Array(8));
    expect(decode(badSize)).toThrow("tensor 'a': 8 data bytes, but F32 [3] needs 12");
    const trailing = handMade({ a: { dtype: 'F32', shape: [1], data_offsets: [0, 4] } }, new Uint8Array(8));
    expect(decode(trailing)).toThrow('data section has 8 bytes, the tensors cover 4');
  });

  it('writes atomically: the old file stays until the new one is complete, and no .tmp remains', async () => {
    const path = join(dir, 'atomic.safetensors');
    writeFileSync(path, 'old contents');
    await nd.saveSafetensors(path, tensors, { v: '2' });
    expect(readdirSync(dir).filter((f) => f.startsWith('atomic'))).toEqual(['atomic.safetensors']);
    expect((await nd.loadSafetensors(path)).metadata.v).toBe('2');
    await expect(nd.loadSafetensors(join(dir, 'missing.safetensors'))).rejects.toThrow(/missing.safetensors: cannot read the file \(ENOENT\)/);
  });
});

describe('checkpoints of a model, Adam and an EMA', () => {
  const n = 32;
  const rng = new nd.Rng(99);
  const xs = Float32Array.from({ length: n * 3 }, () => rng.normal());
  const ys = Float32Array.from({ length: n * 2 }, (_, i) => Math.sin(xs[i]) * 0.5);

  function build(seed: number, widths = [3, 16, 2]) {
    const model = new nd.MLP(widths, { activation: 'tanh', rng: new nd.Rng(seed) });
    const params = model.namedParameters();
    // Two groups, with a schedule: everything that must survive a restart.
    const optimizer = new nd.AdamW(
      [
        { params: params.filter(([name]) => name.startsWith('0.')).map(([, t]) => t), lr: 0.02 },
        { params: params.filter(([name]) => !name.startsWith('0.')).map(([, t]) => t), lr: 0.01, weightDecay: 0.1 },
      ],
      { schedule: nd.linearWarmup(3, nd.cosine(20, 0.1)) },
    );
    const ema = new nd.Ema(optimizer, 0.9);
    const dispose = () => {
      ema.dispose();
      optimizer.dispose();
      model.dispose();
    };
    return { model, optimizer, ema, dispose };
  }

  function train(parts: ReturnType<typeof build>, steps: number): void {
    const x = nd.tensor(xs, [n, 3]);
    const y = nd.tensor(ys, [n, 2]);
    for (let k = 0; k < steps; k++) {
      nd.scope(() => {
        nd.backward(nd.mean(nd.square(nd.sub(parts.model.forward(x), y))));
        parts.optimizer.step();
        parts.optimizer.zeroGrad();
        parts.ema.update();
      });
    }
    x.dispose();
    y.dispose();
  }

  async function snapshot(parts: ReturnType<typeof build>): Promise<number[][]> {
    const out: number[][] = [];
    for (const p of parts.model.parameters()) {
      const { m, v } = parts.optimizer.state(p);
      const avg = parts.ema.averageOf(p);
      for (const t of [p, m, v, avg]) out.push([...(await t.data())]);
      for (const t of [m, v, avg]) t.dispose();
    }
    return out;
  }

  it('save → load gives identical parameters and optimizer state, and training resumes bit-identically', async () => {
    const path = join(dir, 'resume.safetensors');
    const original = build(1);
    const restored = build(2); // different initial weights: everything must come from the file
    try {
      train(original, 5);
      await nd.saveCheckpoint(path, { model: original.model, optimizer: original.optimizer, ema: original.ema, step: 5, metadata: { run: 'test' } });
      const saved = await snapshot(original);

      const loaded = await nd.loadCheckpoint(path, { model: restored.model, optimizer: restored.optimizer, ema: restored.ema });
      expect(loaded.step).toBe(5);
      expect(loaded.metadata.format).toBe(nd.CHECKPOINT_FORMAT);
      expect(loaded.metadata['nerfad.version']).toBe(JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')).version);
      expect(loaded.metadata.optimizer).toBe('AdamW');
      expect(loaded.metadata.run).toBe('test');
      expect(restored.optimizer.stepCount).toBe(5);
      expect(await snapshot(restored)).toEqual(saved);

      train(original, 6);
      train(restored, 6);
      expect(await snapshot(restored)).toEqual(await snapshot(original));
      const file = await nd.loadSafetensors(path);
      expect([...file.tensors.keys()]).toContain('optimizer.exp_avg_sq.1.bias');
      expect([...file.tensors.keys()]).toContain('ema.0.weight');
      expect(readdirSync(dir).some((f) => f.endsWith('.tmp'))).toBe(false);
    } finally {
      original.dispose();
      restored.dispose();
    }
  });

  it('refuses mismatched checkpoints, naming the file and every tensor, and changes nothing', async () => {
    const path = join(dir, 'mismatch.safetensors');
    const source = build(3);
    await nd.saveCheckpoint(path, { model: source.model, step: 1 });
    source.dispose();

    const wider = build(4, [3, 17, 2]);
    const before = await wider.model.parameters()[0].data();
    try {
      const error = await nd.loadCheckpoint(path, { model: wider.model }).catch((e: Error) => e.message);
      expect(error).toContain(`loadCheckpoint: ${path} does not match:`);
      expect(error).toContain("tensor '0.weight' is F32 [16, 3] in the file, expected F32 [17, 3]");
      expect(error).toContain("tensor '1.weight' is F32 [2, 16] in the file, expected F32 [2, 17]");
      expect([...(await wider.model.parameters()[0].data())]).toEqual([...before]);
    } finally {
      wider.dispose();
    }

    const deeper = build(5, [3, 16, 2, 2]);
    try {
      await expect(nd.loadCheckpoint(path, { model: deeper.model })).rejects.toThrow(/tensor '2.weight' is missing \(expected F32 \[2, 2\]\)/);
      await expect(nd.loadCheckpoint(path, { model: deeper.model, optimizer: deeper.optimizer })).rejects.toThrow(
        /no optimizer state \(metadata optimizer.step is missing\)/,
      );
    } finally {
      deeper.dispose();
    }

    const shallow = new nd.MLP([3, 16], { rng: new nd.Rng(6) });
    try {
      await expect(nd.loadCheckpoint(path, { model: shallow })).rejects.toThrow(/unexpected tensors '1.bias', '1.weight' \(pass strict: false/);
      const { step } = await nd.loadCheckpoint(path, { model: shallow, strict: false });
      expect(step).toBe(1);
    } finally {
      shallow.dispose();
    }
  });

  it('refuses to name an optimizer parameter that belongs to no module or named tensor', async () => {
    const stray = nd.keep(nd.tensor([1, 2, 3]));
    const optimizer = new nd.Adam([stray]);
    try {
      await expect(nd.saveCheckpoint(join(dir, 'stray.safetensors'), { optimizer })).rejects.toThrow(/optimizer's parameter .* has no name/);
      await nd.saveCheckpoint(join(dir, 'stray.safetensors'), { optimizer, tensors: { latent: stray } });
      const file = await nd.loadSafetensors(join(dir, 'stray.safetensors'));
      expect([...file.tensors.keys()].sort()).toEqual(['latent', 'optimizer.exp_avg.latent', 'optimizer.exp_avg_sq.latent']);
    } finally {
      optimizer.dispose();
      stray.dispose();
    }
  });
});
