/**
 * The demo: an MLP on Fourier features fits an image (Tancik et al. 2020, "Fourier features let networks learn high
 * frequency functions in low dimensional domains"), trained on the engine's GPU kernels.
 *
 *   pixel (u, v) ∈ [0, 1)² → γ(u, v) = sin(2π·[u v]·B + φ),  B ~ N(0, scale²) of shape [2, F] repeated twice and
 *   φ = [0…0, π/2…π/2], so γ = [sin(2π p·B), cos(2π p·B)] in one matmul, one add and one sin
 *   → Linear → ReLU → … → Linear → sigmoid → RGB,  loss = mean squared error over every pixel (full batch).
 *
 * The target is a procedural test image (gradients, rings, a checkerboard, a chirp, a disc: smooth regions, sharp
 * edges and fine texture) generated here, deterministically; `--set image=path.png` fits a PNG instead.
 * Writes target.png, reconstruction.png and comparison.png (target | reconstruction) into the run directory,
 * snapshots/ during training, and loss and PSNR per logged step into metrics.json and plots/.
 *
 * Trained with Adam (full batch). The ablation variants show what the Fourier features do: `no-fourier` feeds the
 * raw (u, v) (a blurry result), `low-scale` and `high-scale` change the frequency spread of B (too smooth / noisy);
 * `sgd` trains with SGD + momentum instead of Adam. The defaults take 1–2 minutes on a 2-core CPU (lavapipe).
 */
import * as nd from '../src/index.ts';

/** The procedural target: RGB in [0, 1], row-major. */
export function proceduralImage(size: number): nd.FloatImage {
  const data = new Float32Array(size * size * 3);
  const smooth = (e0: number, e1: number, x: number): number => {
    const t = Math.min(1, Math.max(0, (x - e0) / (e1 - e0)));
    return t * t * (3 - 2 * t);
  };
  for (let row = 0; row < size; row++) {
    for (let col = 0; col < size; col++) {
      const u = (col + 0.5) / size;
      const v = (row + 0.5) / size;
      // A smooth diagonal background.
      let r = 0.15 + 0.6 * u;
      let g = 0.25 + 0.45 * v;
      let b = 0.65 - 0.4 * u * v;
      // Concentric rings, fading out with the radius.
      const ring = Math.hypot(u - 0.3, v - 0.32);
      if (ring < 0.24) {
        const w = 0.5 + 0.5 * Math.sin(2 * Math.PI * 9 * ring / 0.24 * 1.0);
        const fade = 1 - smooth(0.18, 0.24, ring);
        r += fade * (0.8 * w - r) * 0.9;
        g += fade * (0.2 * w - g) * 0.9;
        b += fade * (0.3 + 0.5 * (1 - w) - b) * 0.9;
      }
      // A checkerboard with sharp edges in the lower right.
      if (u > 0.58 && v > 0.58 && u < 0.94 && v < 0.94) {
        const cell = (Math.floor((u - 0.58) * 16.6) + Math.floor((v - 0.58) * 16.6)) % 2;
        r = cell ? 0.95 : 0.08;
        g = cell ? 0.92 : 0.1;
        b = cell ? 0.85 : 0.2;
      }
      // A chirp (stripes of rising frequency) in a band at the bottom left.
      if (v > 0.66 && v < 0.92 && u > 0.05 && u < 0.5) {
        const stripe = 0.5 + 0.5 * Math.cos(2 * Math.PI * (4 * u + 40 * u * u));
        g = 0.15 + 0.8 * stripe;
        r = 0.9 - 0.6 * stripe;
        b = 0.2;
      }
      // A yellow disc with an anti-aliased edge.
      const disc = 1 - smooth(0.11, 0.12, Math.hypot(u - 0.76, v - 0.26));
      r += disc * (0.98 - r);
      g += disc * (0.82 - g);
      b += disc * (0.12 - b);
      const o = (row * size + col) * 3;
      data[o] = Math.min(1, Math.max(0, r));
      data[o + 1] = Math.min(1, Math.max(0, g));
      data[o + 2] = Math.min(1, Math.max(0, b));
    }
  }
  return { width: size, height: size, channels: 3, data };
}

/** Pixel-centre coordinates (u, v) in [0, 1), one row per pixel, row-major like the image. */
function pixelCoordinates(width: number, height: number): Float32Array {
  const coords = new Float32Array(width * height * 2);
  for (let row = 0; row < height; row++) {
    for (let col = 0; col < width; col++) {
      coords[(row * width + col) * 2] = (col + 0.5) / width;
      coords[(row * width + col) * 2 + 1] = (row + 0.5) / height;
    }
  }
  return coords;
}

export const psnr = (mse: number): number => -10 * Math.log10(Math.max(mse, 1e-12));

export default nd.defineExperiment({
  name: 'fit-image',
  description: 'an MLP on Fourier features of (u, v) fits an image (Tancik et al. 2020); writes the reconstruction and PSNR per step',
  config: {
    steps: 600,
    /** 'procedural' or the path of a PNG file (resized by nearest neighbour to size×size). */
    image: 'procedural',
    size: 96,
    /** Number of random frequencies F (the network sees 2F features); 0 feeds the raw (u, v). */
    fourierFeatures: 64,
    /** Standard deviation of the random frequencies (cycles per image). */
    fourierScale: 10,
    hidden: 64,
    hiddenLayers: 2,
    /** 'adam' or 'sgd' (with momentum). */
    optimizer: 'adam',
    lr: 0.01,
    /** SGD only. */
    momentum: 0.9,
    seed: 1,
    /** Read the losses back every this many steps (each read waits for the GPU); every step's loss is recorded. */
    logEvery: 10,
    snapshotEvery: 150,
    checkpointEvery: 200,
  },
  variants: {
    'no-fourier': { fourierFeatures: 0 },
    'low-scale': { fourierScale: 1 },
    'high-scale': { fourierScale: 40 },
    sgd: { optimizer: 'sgd', lr: 2 },
    quick: { steps: 100, snapshotEvery: 50, checkpointEvery: 50 },
  },
  plots: [
    { name: 'loss', title: 'training loss (MSE)', series: ['loss'], logY: true },
    { name: 'psnr', title: 'PSNR', series: ['psnr'], yLabel: 'PSNR (dB)' },
  ],
  async run(ctx) {
    const c = ctx.config;
    const rng = new nd.Rng(c.seed);

    // The target image and the inputs, on the GPU once.
    const target = c.image === 'procedural' ? proceduralImage(c.size) : resizeNearest(nd.readImagePng(c.image), c.size);
    nd.writeImagePng(ctx.path('target.png'), target);
    const pixels = target.width * target.height;
    const coords = nd.keep(nd.tensor(pixelCoordinates(target.width, target.height), [pixels, 2]));
    const targetRgb = nd.keep(nd.tensor(target.data, [pixels, 3]));
    const features = nd.keep(fourierFeatures(coords, c.fourierFeatures, c.fourierScale, rng));
    ctx.log(`${target.width}×${target.height} image, ${features.shape[1]} input features, ${c.hiddenLayers}×${c.hidden} hidden, ${c.optimizer} lr ${c.lr}`);

    // The MLP: ReLU hidden layers and a sigmoid output, each fused into its matmul (torch's default init).
    const net = new nd.MLP([features.shape[1], ...Array<number>(c.hiddenLayers).fill(c.hidden), 3], {
      activation: 'relu',
      outputActivation: 'sigmoid',
      rng,
    });
    const optimizer = makeOptimizer(c.optimizer, net, c.lr, c.momentum);
    const forward = (): nd.Tensor => net.forward(features);
    const checkpointParts = (): nd.CheckpointParts => ({ model: net, ...optimizer.checkpointParts() });

    // Continue from the run directory's checkpoint when resuming.
    const resumed = await ctx.resume(checkpointParts());
    let step = resumed?.step ?? 0;

    const writeReconstruction = async (file: string): Promise<Float32Array> => {
      const prediction = nd.noGrad(forward);
      const rgb = Float32Array.from(await prediction.data());
      prediction.dispose();
      nd.writeImagePng(file, { width: target.width, height: target.height, channels: 3, data: rgb });
      return rgb;
    };

    // Every step's loss is copied on the GPU into a small history buffer that is read back every `logEvery` steps:
    // PSNR for every step without waiting for the GPU at every step.
    const history = nd.keep(nd.zeros([Math.max(1, c.logEvery)]));
    let pending: number[] = []; // the steps whose losses sit in `history`, in slot order
    const flushHistory = async (): Promise<void> => {
      if (pending.length === 0) return;
      const losses = await history.data();
      pending.forEach((s, k) => {
        const mse = losses[k];
        if (!Number.isFinite(mse)) throw new Error(`fit-image: the loss is ${mse} at step ${s}; lower --set lr=...`);
        ctx.record(s, { loss: mse, psnr: psnr(mse) });
      });
      pending = [];
    };

    while (step < c.steps && !ctx.stopRequested) {
      step += 1;
      const slot = pending.length;
      nd.scope(() => {
        const mse = nd.mean(nd.square(nd.sub(forward(), targetRgb)));
        nd.backward(mse);
        optimizer.step(); // and zeroes the gradients
        const view = history.view;
        nd.runtime().copy(mse.view, { pooled: view.pooled, offset: view.offset + 4 * slot, size: 4 });
      });
      pending.push(step);
      if (pending.length === history.size || step === c.steps || step === 1) await flushHistory();
      else ctx.tick(step);
      if (c.snapshotEvery > 0 && step % c.snapshotEvery === 0) await writeReconstruction(ctx.path('snapshots', `step-${String(step).padStart(6, '0')}.png`));
      // A checkpoint at the end too: `--resume DIR --set steps=N` continues a finished run.
      if (c.checkpointEvery > 0 && (step % c.checkpointEvery === 0 || step === c.steps)) {
        await flushHistory();
        await ctx.checkpoint({ step, ...checkpointParts() });
      }
    }
    await flushHistory();
    history.dispose();
    if (ctx.stopRequested) await ctx.checkpoint({ step, ...checkpointParts() });

    // The result: the reconstruction next to the target, and the final PSNR measured on it.
    const rgb = await writeReconstruction(ctx.path('reconstruction.png'));
    // target | reconstruction, enlarged (nearest neighbour) to at least 256 pixels high for viewing.
    const enlarge = Math.max(1, Math.ceil(256 / target.height));
    nd.writeImagePng(ctx.path('comparison.png'), nd.upscale(nd.sideBySide([target, { ...target, data: rgb }], 2), enlarge));
    let squaredError = 0;
    for (let i = 0; i < rgb.length; i++) squaredError += (rgb[i] - target.data[i]) ** 2;
    const finalPsnr = psnr(squaredError / rgb.length);
    ctx.summary({ psnr: Number(finalPsnr.toFixed(3)), steps: step, parameters: net.parameterCount() });
    ctx.log(`final PSNR ${finalPsnr.toFixed(2)} dB after ${step} steps`);

    optimizer.dispose();
    net.dispose();
    for (const t of [coords, targetRgb, features]) t.dispose();
  },
});

/** γ(p) = [sin(2π p·B), cos(2π p·B)] for B ~ N(0, scale²) [2, count]; the raw coordinates when count is 0. */
function fourierFeatures(coords: nd.Tensor, count: number, scale: number, rng: nd.Rng): nd.Tensor {
  if (count === 0) return nd.copy(coords);
  return nd.scope(() => {
    const b = new Float32Array(2 * 2 * count);
    for (let i = 0; i < 2; i++) {
      for (let j = 0; j < count; j++) {
        const frequency = 2 * Math.PI * scale * rng.normal();
        b[i * 2 * count + j] = frequency;
        b[i * 2 * count + count + j] = frequency; // the cosine half: the same frequencies, phase-shifted
      }
    }
    const phase = Float32Array.from({ length: 2 * count }, (_, j) => (j < count ? 0 : Math.PI / 2));
    return nd.sin(nd.add(nd.matmul(coords, nd.tensor(b, [2, 2 * count])), nd.tensor(phase, [2 * count])));
  });
}

interface Optimizer {
  /** Updates the parameters from their gradients and zeroes the gradients (queued, inside the step's scope). */
  step(): void;
  /** What a checkpoint needs besides the model. */
  checkpointParts(): nd.CheckpointParts;
  dispose(): void;
}

/**
 * 'adam': the engine's Adam (one dispatch for every parameter). 'sgd': SGD with momentum written with engine ops,
 * v ← μ·v + g, p ← p − lr·v, kept as an ablation.
 */
function makeOptimizer(kind: string, net: nd.Module, lr: number, momentum: number): Optimizer {
  if (kind === 'adam') {
    const adam = new nd.Adam(net.parameters(), { lr });
    return {
      step: () => {
        adam.step();
        adam.zeroGrad();
      },
      checkpointParts: () => ({ optimizer: adam }),
      dispose: () => adam.dispose(),
    };
  }
  if (kind !== 'sgd') throw new Error(`fit-image: unknown optimizer '${kind}' (use adam or sgd)`);
  const params = net.parameters();
  const velocity = params.map((p) => nd.keep(nd.zeros(p.shape)));
  return {
    step: () =>
      nd.noGrad(() =>
        params.forEach((p, k) => {
          const g = p.grad;
          if (!g) return;
          const v = nd.add(nd.mul(velocity[k], momentum), g);
          nd.runtime().copy(v.view, velocity[k].view);
          nd.accumulate(p, nd.mul(v, -lr));
          nd.runtime().clear(g.view);
        }),
      ),
    checkpointParts: () => ({ tensors: Object.fromEntries(velocity.map((v, k) => [`sgd.velocity.${k}`, v])) }),
    dispose: () => velocity.forEach((v) => v.dispose()),
  };
}

/** Nearest-neighbour resize to size×size (for `--set image=file.png`). */
function resizeNearest(image: nd.FloatImage, size: number): nd.FloatImage {
  const { width, height, channels } = image;
  const data = new Float32Array(size * size * 3);
  for (let row = 0; row < size; row++) {
    for (let col = 0; col < size; col++) {
      const src = (Math.floor(((row + 0.5) * height) / size) * width + Math.floor(((col + 0.5) * width) / size)) * channels;
      for (let c = 0; c < 3; c++) data[(row * size + col) * 3 + c] = image.data[src + c];
    }
  }
  return { width: size, height: size, channels: 3, data };
}
