/**
 * Learning-rate schedules: pure functions from the step to a **factor** that multiplies each parameter group's base
 * learning rate (torch's LambdaLR convention, so one schedule serves groups with different rates, as ER-NeRF's grid
 * and network groups need). `step` counts the updates already taken: the first update uses schedule(0).
 *
 * They compose:
 *   linearWarmup(500, cosine(100_000, 0.01))        // warm up over 500 steps, then cosine to 1% over 100k
 *   exponentialDecay(0.1, 250_000)                  // ×0.1 every 250k steps, smoothly (NeRF-AD's schedule)
 *   product(stepDecay(1000, 0.5), constant(2))
 */
export type Schedule = (step: number) => number;

function checkPositive(name: string, value: number): void {
  if (!(value > 0) || !Number.isFinite(value)) throw new Error(`${name} must be a positive number, got ${value}`);
}

/** The same factor at every step. */
export const constant =
  (factor = 1): Schedule =>
  () =>
    factor;

/**
 * rate^(step / decaySteps): multiplies the rate by `rate` every `decaySteps` steps, smoothly (or in jumps with
 * `staircase`, like tf's ExponentialDecay). tiny-cuda-nn's ExponentialDecay is this with a start step.
 */
export function exponentialDecay(rate: number, decaySteps = 1, options: { staircase?: boolean; startStep?: number } = {}): Schedule {
  checkPositive('exponentialDecay: decaySteps', decaySteps);
  const start = options.startStep ?? 0;
  return (step) => {
    const progress = Math.max(0, step - start) / decaySteps;
    return rate ** (options.staircase ? Math.floor(progress) : progress);
  };
}

/** gamma^⌊step / stepSize⌋ (torch's StepLR). */
export function stepDecay(stepSize: number, gamma = 0.1): Schedule {
  checkPositive('stepDecay: stepSize', stepSize);
  return (step) => gamma ** Math.floor(step / stepSize);
}

/** gamma^(number of milestones ≤ step) (torch's MultiStepLR). */
export function multiStepDecay(milestones: readonly number[], gamma = 0.1): Schedule {
  const sorted = [...milestones].sort((a, b) => a - b);
  return (step) => gamma ** sorted.filter((m) => m <= step).length;
}

/** Cosine annealing from 1 to `minFactor` over `totalSteps`, then `minFactor` (torch's CosineAnnealingLR). */
export function cosine(totalSteps: number, minFactor = 0): Schedule {
  checkPositive('cosine: totalSteps', totalSteps);
  return (step) => {
    const progress = Math.min(Math.max(step, 0), totalSteps) / totalSteps;
    return minFactor + (1 - minFactor) * 0.5 * (1 + Math.cos(Math.PI * progress));
  };
}

/** Linear from 1 to `endFactor` over `totalSteps`, then `endFactor` (torch's LinearLR, decaying). */
export function linearDecay(totalSteps: number, endFactor = 0): Schedule {
  checkPositive('linearDecay: totalSteps', totalSteps);
  return (step) => 1 + (endFactor - 1) * (Math.min(Math.max(step, 0), totalSteps) / totalSteps);
}

/**
 * Linear warm-up over `warmupSteps` from `startFactor` to 1, then `after`, whose step 0 is the first step after
 * the warm-up. During the warm-up the factor is also scaled by after(0), so the curve is continuous.
 */
export function linearWarmup(warmupSteps: number, after: Schedule = constant(1), startFactor = 0): Schedule {
  if (!(warmupSteps >= 0)) throw new Error(`linearWarmup: warmupSteps must be ≥ 0, got ${warmupSteps}`);
  return (step) => {
    if (step >= warmupSteps) return after(step - warmupSteps);
    return (startFactor + (1 - startFactor) * (step / warmupSteps)) * after(0);
  };
}

/** Runs schedules one after another: `[schedule, steps]` pairs, each restarting at its own step 0; the last runs on. */
export function sequence(...phases: readonly [Schedule, number][]): Schedule {
  if (phases.length === 0) throw new Error('sequence: give at least one [schedule, steps] phase');
  return (step) => {
    let start = 0;
    for (let k = 0; k < phases.length - 1; k++) {
      const [schedule, steps] = phases[k];
      if (step < start + steps) return schedule(step - start);
      start += steps;
    }
    return phases[phases.length - 1][0](step - start);
  };
}

/** The product of several schedules evaluated at the same step. */
export function product(...schedules: readonly Schedule[]): Schedule {
  return (step) => schedules.reduce((factor, s) => factor * s(step), 1);
}
