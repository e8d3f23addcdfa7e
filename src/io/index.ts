export * from './safetensors.ts';
export * from './checkpoint.ts';
