/**
 * Every kernel's WGSL must agree with its declaration: @binding(i) lines in the order of `bindings` (storage,
 * read or read_write as declared), then the uniform Params at @binding(n) whose members are the declared params
 * in order with their types. Catches drift between a kernel's text and what the runtime binds and packs.
 */
import { readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { Kernel } from '../src/kernels/runtime/kernel.ts';

function kernelFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return name === 'runtime' ? [] : kernelFiles(path);
    return name.endsWith('.ts') && !name.endsWith('.ref.ts') ? [path] : [];
  });
}

const root = join(import.meta.dirname, '..', 'src', 'kernels');
const files = kernelFiles(root);

describe('kernel declarations match their WGSL', () => {
  it('finds kernel files', () => expect(files.length).toBeGreaterThan(3));
  for (const file of files) {
    it(relative(root, file), async () => {
      const module = (await import(file)) as Record<string, unknown>;
      const kernels = Object.values(module).filter((v): v is Kernel<unknown> => (v as Kernel<unknown>)?.kind === 'kernel');
      for (const kernel of kernels) {
        const variants = kernel.variants ?? [undefined];
        for (const consts of variants) {
          const source = kernel.wgsl(consts);
          const where = `${kernel.name} ${JSON.stringify(consts) ?? ''}`;
          const bindings = [...source.matchAll(/@group\(0\)\s*@binding\((\d+)\)\s*var<([^>]+)>\s*(\w+)/g)].map((m) => ({
            index: Number(m[1]),
            space: m[2].replace(/\s/g, ''),
          }));
          expect(bindings.map((b) => b.index), `${where}: binding indices`).toEqual(bindings.map((_, i) => i));
          expect(bindings.length, `${where}: binding count`).toBe(kernel.bindings.length + 1);
          kernel.bindings.forEach((b, i) => {
            const expected = b.access === 'read' ? 'storage,read' : 'storage,read_write';
            expect(bindings[i].space, `${where}: binding ${i} (${b.name})`).toBe(expected);
          });
          expect(bindings[kernel.bindings.length].space, `${where}: params binding`).toBe('uniform');
          const struct = /struct\s+Params\s*\{([^}]*)\}/.exec(source);
          expect(struct, `${where}: struct Params`).not.toBeNull();
          const members = struct![1]
            .split(',')
            .map((m) => m.trim())
            .filter(Boolean)
            .map((m) => m.split(':').map((x) => x.trim()));
          expect(members, `${where}: Params members`).toEqual(kernel.params.map((p) => [p.name, p.type]));
        }
      }
    });
  }
});
