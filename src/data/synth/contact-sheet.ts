/**
 * A contact sheet for a person to look at: a row of frames with their 68 landmarks drawn, and under them the
 * waveform with the AU curves (AU25, AU26, AU20, AU10, AU14, AU45) on the same time axis, the sampled frames marked.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Canvas, PALETTE, type Rgb } from '../../cli/plot.ts';
import { AU_NAMES, loadClip } from '../format.ts';

export interface ContactSheetOptions {
  /** Frames shown (default 8, spread over the first `seconds`). */
  frames?: number;
  /** Length of the plotted window in seconds (default 8). */
  seconds?: number;
  /** Display scale of the frame thumbnails (default 2). */
  scale?: number;
}

export function writeContactSheet(dir: string, out = join(dir, 'contact-sheet.png'), options: ContactSheetOptions = {}): string {
  const clip = loadClip(dir);
  const { fps, width, height, frameCount } = clip.info;
  const seconds = Math.min(options.seconds ?? 8, frameCount / fps);
  const shown = options.frames ?? 8, scale = options.scale ?? 2;
  const windowFrames = Math.floor(seconds * fps);
  const picks = Array.from({ length: shown }, (_, k) => Math.min(frameCount - 1, Math.round(((k + 0.5) * windowFrames) / shown)));
  const thumbW = width * scale, thumbH = height * scale, pad = 6;
  const sheetW = shown * (thumbW + pad) + pad, plotH = 260, sheetH = pad + thumbH + 14 + plotH + pad;
  const canvas = new Canvas(sheetW, sheetH, [255, 255, 255]);
  picks.forEach((f, k) => {
    const image = clip.frame(f), x0 = pad + k * (thumbW + pad), y0 = pad;
    for (let y = 0; y < thumbH; y++) for (let x = 0; x < thumbW; x++) {
      const i = (Math.floor(y / scale) * width + Math.floor(x / scale)) * 3;
      canvas.blend(x0 + x, y0 + y, [image.data[i]!, image.data[i + 1]!, image.data[i + 2]!]);
    }
    const lm = clip.landmarks(f);
    for (let l = 0; l < 68; l++) {
      const px = x0 + Math.round(lm[l * 2]! * scale), py = y0 + Math.round(lm[l * 2 + 1]! * scale);
      const color: Rgb = l >= 48 ? [255, 40, 40] : [40, 255, 60];
      canvas.fillRect(px - 1, py - 1, 2, 2, color);
    }
    canvas.text(x0 + 2, y0 + thumbH + 4, `#${f} ${(f / fps).toFixed(2)}s`, [0, 0, 0]);
  });
  // Waveform band, then AU curves (0–5) under it, sharing the time axis.
  const plotX0 = pad + 40, plotW = sheetW - plotX0 - pad, waveTop = pad + thumbH + 18, waveH = 60, auTop = waveTop + waveH + 8, auH = plotH - waveH - 30;
  const xOf = (t: number) => plotX0 + (t / seconds) * plotW;
  canvas.text(pad, waveTop + waveH / 2 - 3, 'audio', [0, 0, 0]);
  const samplesPerPx = (clip.audio.length / (frameCount / fps)) * (seconds / plotW);
  for (let x = 0; x < plotW; x++) {
    let peak = 0;
    for (let i = Math.floor(x * samplesPerPx); i < Math.floor((x + 1) * samplesPerPx) && i < clip.audio.length; i++) peak = Math.max(peak, Math.abs(clip.audio[i]!));
    const h = Math.min(1, peak * 2) * (waveH / 2);
    canvas.line(plotX0 + x, waveTop + waveH / 2 - h, plotX0 + x, waveTop + waveH / 2 + h, [90, 90, 90]);
  }
  canvas.line(plotX0, auTop + auH, plotX0 + plotW, auTop + auH, [0, 0, 0]);
  canvas.line(plotX0, auTop, plotX0, auTop + auH, [0, 0, 0]);
  canvas.text(pad, auTop, '5', [0, 0, 0]);
  canvas.text(pad, auTop + auH - 7, '0', [0, 0, 0]);
  const yOf = (v: number) => auTop + auH - (v / 5) * auH;
  const order = ['AU25', 'AU26', 'AU20', 'AU10', 'AU14', 'AU45'] as const;
  order.forEach((name, k) => {
    const a = AU_NAMES.indexOf(name), color = PALETTE[k % PALETTE.length]!;
    for (let f = 1; f < windowFrames; f++) {
      canvas.line(xOf((f - 0.5) / fps), yOf(clip.aus(f - 1)[a]!), xOf((f + 0.5) / fps), yOf(clip.aus(f)[a]!), color, 1.5);
    }
    canvas.endPolyline();
    canvas.text(plotX0 + 6 + k * 48, auTop + auH + 6, name, color);
  });
  for (const f of picks) {
    const x = xOf((f + 0.5) / fps);
    for (let y = waveTop; y < auTop + auH; y += 3) canvas.blend(Math.round(x), y, [200, 0, 0], 0.6);
  }
  canvas.text(plotX0 + plotW - 60, auTop + auH + 6, `${seconds.toFixed(0)} s`, [0, 0, 0]);
  writeFileSync(out, canvas.toPng());
  return out;
}
