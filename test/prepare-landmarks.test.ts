/** Boxes, AU estimates and polygon masks from 68 landmarks (src/data/prepare/landmarks.ts). */
import { describe, expect, it } from 'vitest';
import { AU_NAMES } from '../src/data/format.ts';
import { boxesFromLandmarks, cropBox, estimateAus, fillPolygon, lipBox } from '../src/data/prepare/landmarks.ts';
import { templateLandmarks } from './fixtures/prepare-face.ts';

const au = (name: (typeof AU_NAMES)[number]) => AU_NAMES.indexOf(name);

describe('landmark geometry', () => {
  it('AU25/AU26 grow with the mouth opening, AU45 with closing eyes, AU20 with a wider mouth; neutral reads 0', () => {
    const frames = [
      templateLandmarks({ cx: 100, cy: 100, scale: 50 }),                       // neutral
      templateLandmarks({ cx: 100, cy: 100, scale: 50 }),                       // neutral
      templateLandmarks({ cx: 100, cy: 100, scale: 50 }),                       // neutral
      templateLandmarks({ cx: 100, cy: 100, scale: 50, mouthOpen: 0.05 }),
      templateLandmarks({ cx: 100, cy: 100, scale: 50, mouthOpen: 0.15 }),
      templateLandmarks({ cx: 100, cy: 100, scale: 50, eyeOpen: 0.2 }),
      templateLandmarks({ cx: 100, cy: 100, scale: 50, mouthWide: 1.2 }),
      // the same neutral face twice as large and elsewhere: scale-free measures
      templateLandmarks({ cx: 220, cy: 150, scale: 100 }),
    ];
    const aus = estimateAus(frames.flat(), frames.length);
    const at = (f: number, name: (typeof AU_NAMES)[number]) => aus[f * 6 + au(name)]!;
    for (const name of AU_NAMES) { expect(at(0, name)).toBe(0); expect(at(7, name)).toBeCloseTo(0, 5); }
    expect(at(3, 'AU25')).toBeGreaterThan(0.5);
    expect(at(4, 'AU25')).toBeGreaterThan(at(3, 'AU25'));
    expect(at(4, 'AU26')).toBeGreaterThan(at(3, 'AU26'));
    expect(at(3, 'AU26')).toBeGreaterThan(0);
    expect(at(5, 'AU45')).toBeGreaterThan(4);
    expect(at(4, 'AU45')).toBe(0);
    expect(at(6, 'AU20')).toBeGreaterThan(1);
    expect(at(6, 'AU14')).toBeGreaterThan(1);               // widened with the lips together
    expect(at(6, 'AU25')).toBe(0);
    for (const v of aus) { expect(v).toBeGreaterThanOrEqual(0); expect(v).toBeLessThanOrEqual(5); }
  });

  it('boxes: crop square and inside the image even at the edge, lip box around the mouth', () => {
    const p = templateLandmarks({ cx: 10, cy: 60, scale: 30 });            // face half out of the left edge
    const [x0, y0, x1, y1] = cropBox(p, 0, 100, 80);
    expect(x1 - x0).toBe(y1 - y0);
    expect(x0).toBeGreaterThanOrEqual(0); expect(y0).toBeGreaterThanOrEqual(0); expect(x1).toBeLessThanOrEqual(100); expect(y1).toBeLessThanOrEqual(80);
    const lip = lipBox(templateLandmarks({ cx: 50, cy: 40, scale: 20 }), 0, 100, 80);
    expect(lip[0]).toBeLessThanOrEqual(50 - 7); expect(lip[2]).toBeGreaterThanOrEqual(50 + 7);
    const boxes = boxesFromLandmarks(p, 1, 100, 80);
    for (let b = 0; b < 3; b++) { expect(boxes[b * 4]!).toBeLessThan(boxes[b * 4 + 2]!); expect(boxes[b * 4 + 1]!).toBeLessThan(boxes[b * 4 + 3]!); }
  });

  it('fillPolygon fills pixel centres inside, exactly for an axis-aligned square', () => {
    const mask = fillPolygon(new Uint8Array(100), 10, 10, [[2, 3], [7, 3], [7, 8], [2, 8]]);
    let count = 0;
    for (let y = 0; y < 10; y++) for (let x = 0; x < 10; x++) {
      const inside = x >= 2 && x < 7 && y >= 3 && y < 8;
      expect(mask[y * 10 + x]).toBe(inside ? 255 : 0);
      count += inside ? 1 : 0;
    }
    expect(count).toBe(25);
  });
});

describe('bridgeGaps', () => {
  it('interpolates short inner gaps only', async () => {
    const { bridgeGaps } = await import('../src/data/prepare/prepare.ts');
    const m = (v: number) => [v, 2 * v];
    const meshes = [null, m(0), null, null, m(3), null, null, null, m(7), null];
    expect(bridgeGaps(meshes, 2)).toEqual([2, 3]);
    expect(meshes[2]).toEqual(m(1)); expect(meshes[3]).toEqual(m(2));
    expect(meshes[0]).toBeNull(); expect(meshes[5]).toBeNull(); expect(meshes[9]).toBeNull();
  });
});
