// Prints the WebGPU adapter's name and exits 0, or exits 1 when Dawn finds no adapter.
// Kept as plain JS so it runs before TypeScript tooling is known to work.
import { mkdirSync, accessSync, constants } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

try {
  accessSync(process.env.XDG_RUNTIME_DIR ?? '', constants.W_OK);
} catch {
  const dir = join(tmpdir(), `nerfad-xdg-${process.getuid?.() ?? 'user'}`);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  process.env.XDG_RUNTIME_DIR = dir;
}
let code = 1;
try {
  const { create } = await import('webgpu');
  const gpu = create([]);
  globalThis.__nerfadKeepDawn = gpu; // webgpu@0.6.2 aborts if this object is collected
  const adapter = await gpu.requestAdapter();
  if (adapter) {
    const i = adapter.info;
    console.log(i.description || `${i.vendor} ${i.device}`);
    code = 0;
  }
} catch (e) {
  console.error(String(e));
}
process.exit(code);
