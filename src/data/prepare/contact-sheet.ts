/**
 * A contact sheet of a prepared clip for a person to look at: six frames spread over the clip, in three rows —
 * (1) the frame with its 68 landmarks (lips red), face box (yellow), crop box (cyan) and the head pose's axes
 * (x red, y green, z blue, 5 cm long, drawn from the head origin through the intrinsics); (2) the masks over the
 * frame (head blue, face green, lip red); (3) the torso image — and under them the AU curves over the whole clip.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Canvas, PALETTE, type Rgb } from '../../cli/plot.ts';
import { AU_NAMES, loadClip, type Clip } from '../format.ts';

/** Image position of head-frame point p (metres) in frame f: x_cam = w2c · p, projected with the clip's intrinsics. */
export function projectHeadPoint(clip: Clip, f: number, p: readonly [number, number, number]): [number, number] {
  const m = clip.pose(f);   // camera-to-world, row-major
  const d = [p[0] - m[3]!, p[1] - m[7]!, p[2] - m[11]!];
  // R_wc = Rᵀ of the camera-to-world rotation
  const cam = [0, 1, 2].map((c) => m[c]! * d[0]! + m[4 + c]! * d[1]! + m[8 + c]! * d[2]!);
  const { fx, fy, cx, cy } = clip.info.intrinsics;
  // camera looks down −z, y up; image y down
  return [cx + (fx * cam[0]!) / -cam[2]!, cy - (fy * cam[1]!) / -cam[2]!];
}

export function writePrepareSheet(dir: string, out = join(dir, 'contact-sheet.png')): string {
  const clip = loadClip(dir);
  const { width, height, frameCount, fps } = clip.info;
  const shown = Math.min(6, frameCount), thumb = 192, scale = thumb / width, thumbH = Math.round(height * scale), pad = 6;
  const picks = Array.from({ length: shown }, (_, k) => Math.min(frameCount - 1, Math.floor(((k + 0.5) * frameCount) / shown)));
  const plotH = 150, sheetW = pad + shown * (thumb + pad), sheetH = pad + 3 * (thumbH + 16) + plotH + pad;
  const canvas = new Canvas(sheetW, sheetH, [255, 255, 255]);
  const paste = (x0: number, y0: number, image: { data: Uint8Array; channels: number }, tint?: (sx: number, sy: number, rgb: Rgb) => Rgb) => {
    for (let y = 0; y < thumbH; y++) for (let x = 0; x < thumb; x++) {
      const sx = Math.min(width - 1, Math.floor(x / scale)), sy = Math.min(height - 1, Math.floor(y / scale)), i = (sy * width + sx) * 3;
      const rgb: Rgb = [image.data[i]!, image.data[i + 1]!, image.data[i + 2]!];
      canvas.blend(x0 + x, y0 + y, tint ? tint(sx, sy, rgb) : rgb);
    }
  };
  const box = (x0: number, y0: number, b: Float32Array, color: Rgb) => {
    const [a, c, e, g] = [b[0]! * scale + x0, b[1]! * scale + y0, b[2]! * scale + x0, b[3]! * scale + y0];
    canvas.line(a, c, e, c, color); canvas.line(e, c, e, g, color); canvas.line(e, g, a, g, color); canvas.line(a, g, a, c, color);
    canvas.endPolyline();
  };
  picks.forEach((f, k) => {
    const x0 = pad + k * (thumb + pad);
    let y0 = pad;
    const frame = clip.frame(f);
    paste(x0, y0, frame);
    const lm = clip.landmarks(f);
    for (let l = 0; l < 68; l++) canvas.fillRect(x0 + Math.round(lm[l * 2]! * scale) - 1, y0 + Math.round(lm[l * 2 + 1]! * scale) - 1, 2, 2, l >= 48 ? [255, 40, 40] : [40, 255, 60]);
    box(x0, y0, clip.box('face', f), [250, 220, 0]);
    box(x0, y0, clip.box('crop', f), [0, 220, 250]);
    const origin = projectHeadPoint(clip, f, [0, 0, 0]);
    ([[[0.05, 0, 0], [255, 0, 0]], [[0, 0.05, 0], [0, 200, 0]], [[0, 0, 0.05], [40, 80, 255]]] as const).forEach(([axis, color]) => {
      const tip = projectHeadPoint(clip, f, axis);
      canvas.line(x0 + origin[0] * scale, y0 + origin[1] * scale, x0 + tip[0] * scale, y0 + tip[1] * scale, color, 2);
      canvas.endPolyline();
    });
    canvas.text(x0 + 2, y0 + thumbH + 4, `#${f} ${(f / fps).toFixed(2)}s`, [0, 0, 0]);
    y0 += thumbH + 16;
    const head = clip.mask('head', f).data, face = clip.mask('face', f).data, lip = clip.mask('lip', f).data;
    paste(x0, y0, frame, (sx, sy, [r, g, b]) => {
      const p = sy * width + sx, h = head[p]! / 255, fa = face[p]! / 255, li = lip[p]! / 255;
      const mix = (v: number, t: number, a: number) => Math.round(v * (1 - a) + t * a);
      let out: [number, number, number] = [r, g, b];
      if (h) out = [mix(out[0], 40, 0.45 * h), mix(out[1], 90, 0.45 * h), mix(out[2], 255, 0.45 * h)];
      if (fa) out = [mix(out[0], 40, 0.4 * fa), mix(out[1], 255, 0.4 * fa), mix(out[2], 60, 0.4 * fa)];
      if (li) out = [mix(out[0], 255, 0.6 * li), mix(out[1], 30, 0.6 * li), mix(out[2], 30, 0.6 * li)];
      return out;
    });
    canvas.text(x0 + 2, y0 + thumbH + 4, 'masks', [0, 0, 0]);
    y0 += thumbH + 16;
    paste(x0, y0, clip.torso(f));
    canvas.text(x0 + 2, y0 + thumbH + 4, 'torso', [0, 0, 0]);
  });
  const top = pad + 3 * (thumbH + 16) + 4, plotX0 = pad + 30, plotW = sheetW - plotX0 - pad, auH = plotH - 24;
  const xOf = (f: number) => plotX0 + ((f + 0.5) / frameCount) * plotW, yOf = (v: number) => top + auH - (v / 5) * auH;
  canvas.line(plotX0, top + auH, plotX0 + plotW, top + auH, [0, 0, 0]);
  canvas.line(plotX0, top, plotX0, top + auH, [0, 0, 0]);
  canvas.endPolyline();
  canvas.text(pad, top, '5', [0, 0, 0]);
  canvas.text(pad, top + auH - 7, '0', [0, 0, 0]);
  AU_NAMES.forEach((name, a) => {
    const color = PALETTE[a % PALETTE.length]!;
    for (let f = 1; f < frameCount; f++) canvas.line(xOf(f - 1), yOf(clip.aus(f - 1)[a]!), xOf(f), yOf(clip.aus(f)[a]!), color, 1.5);
    canvas.endPolyline();
    canvas.text(plotX0 + 6 + a * 48, top + auH + 8, name, color);
  });
  for (const f of picks) for (let y = top; y < top + auH; y += 3) canvas.blend(Math.round(xOf(f)), y, [200, 0, 0], 0.6);
  writeFileSync(out, canvas.toPng());
  return out;
}
