/**
 * fit-scene side by side: each variant is run through the real CLI (`nerfad run experiments/fit-scene.ts`) in a
 * child process with a training budget of `minutes`, and its metrics.json and psnr-vs-time.json are read back:
 * held-out PSNR against wall time and steps, train rays/s, render time per frame, dispatches per step, bytes
 * allocated. The child is the only process using the adapter while it runs (this one waits idle).
 *
 * Run alone: `npx tsx bench/nerf.ts [minutes] [variant,variant]`.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

export interface FitSceneRow {
  variant: string;
  heldoutPsnr: number;
  steps: number;
  trainSeconds: number;
  raysPerSecond: number;
  renderMsPerFrame: number;
  frameSize: string;
  render128Ms: number | null;
  /** The 128² frame with the trained f32 table instead of the f16 copy rendering reads (hash backbone). */
  render128F32TableMs: number | null;
  /** Held-out PSNR with the f32 table. */
  heldoutPsnrF32Table: number | null;
  dispatchesPerStep: number;
  bytesAllocated: number;
  /** Held-out PSNR at each evaluation: "seconds s: dB". */
  curve: string;
}

export function benchFitScene(minutes: number, variants: readonly string[], log: (s: string) => void = () => {}): FitSceneRow[] {
  return variants.map((variant) => {
    const out = mkdtempSync(join(tmpdir(), `nerfad-bench-${variant}-`));
    log(`fit-scene --variant ${variant}, ${minutes} min`);
    // Evaluating the MLP backbones renders every view through a wide MLP (on lavapipe ~30 s per 64² view and
    // ~2 min per 128² frame for the 4×128 one): only at the end, on 2 held-out views, and no 128² frame.
    const hash = variant.startsWith('hash');
    const evalEvery = hash ? Math.max(10, Math.round((minutes * 60) / 4)) : minutes * 60 + 1;
    const mlpOnly = hash ? [] : ['--set', 'testViews=2', '--set', 'renderSize=32'];
    const child = spawnSync(
      process.execPath,
      ['bin/nerfad.js', 'run', 'experiments/fit-scene.ts', '--variant', variant, '--set', `minutes=${minutes}`, '--set', `evalEverySeconds=${evalEvery}`, ...mlpOnly, '--out', out, '--quiet'],
      { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: (minutes * 60 + (hash ? 600 : 1800)) * 1000 },
    );
    if (child.status !== 0) {
      throw new Error(`bench: fit-scene --variant ${variant} failed (exit ${child.status}):\n${(child.stderr ?? '').slice(-2000)}`);
    }
    const metrics = JSON.parse(readFileSync(join(out, 'metrics.json'), 'utf8'));
    const s = metrics.summary as Record<string, number | string>;
    const curve = JSON.parse(readFileSync(join(out, 'psnr-vs-time.json'), 'utf8')) as { step: number; seconds: number; psnr: number }[];
    rmSync(out, { recursive: true, force: true });
    return {
      variant,
      heldoutPsnr: Number(s.heldout_psnr),
      steps: Number(s.steps),
      trainSeconds: Number(s.train_seconds),
      raysPerSecond: Number(s.rays_per_second),
      renderMsPerFrame: Number(s.render_ms_per_frame),
      frameSize: String(s.frame_size),
      render128Ms: s.render_ms_per_frame_128 === undefined ? null : Number(s.render_ms_per_frame_128),
      render128F32TableMs: s.render_ms_per_frame_128_f32_table === undefined ? null : Number(s.render_ms_per_frame_128_f32_table),
      heldoutPsnrF32Table: s.heldout_psnr_f32_table === undefined ? null : Number(s.heldout_psnr_f32_table),
      dispatchesPerStep: Number(s.dispatches_per_step),
      bytesAllocated: Number(s.bytes_allocated),
      curve: curve.map((p) => `${p.seconds.toFixed(0)} s/${p.step}: ${p.psnr.toFixed(1)}`).join(', '),
    };
  });
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const minutes = Number(process.argv[2] ?? 1);
  const variants = (process.argv[3] ?? 'hash,mlp').split(',');
  console.table(benchFitScene(minutes, variants, console.error));
}
