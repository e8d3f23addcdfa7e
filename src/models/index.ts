export { Module, Sequential, type AnyModule } from './module.ts';
export { Linear, MLP, type LinearOptions, type MLPOptions, type Activation } from './linear.ts';
export { Conv1d, Conv2d, ConvTranspose2d, type ConvModuleOptions, type ConvTranspose2dOptions as ConvTranspose2dModuleOptions } from './conv.ts';
export { LayerNorm, InstanceNorm2d } from './norm.ts';
export { GRUCell } from './recurrent.ts';
export { FusedMLP, type FusedMLPOptions } from './fused-mlp.ts';
export * from './init.ts';
