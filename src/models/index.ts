export { Module, Sequential, type AnyModule } from './module.ts';
export { Linear, MLP, type LinearOptions, type MLPOptions, type Activation } from './linear.ts';
export * from './init.ts';
