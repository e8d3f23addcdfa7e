export { Adam, AdamW, type AdamOptions, type ParamGroup, type ParamGroupSpec } from './adam.ts';
export { Ema } from './ema.ts';
export { FlatLayout, type ArenaSegment } from './arena.ts';
export * from './schedule.ts';
