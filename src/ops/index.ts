export * from './elementwise.ts';
export * from './reduce.ts';
export * from './shape.ts';
export * from './matmul.ts';
export * from './render.ts';
export * from './indexing.ts';
export * from './conv.ts';
