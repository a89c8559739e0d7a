// torch.nn for the engine: modules, layers, state dicts. Exported as the namespace `nn`
// (nn.Linear, nn.Module, …) from gpt2-prompt/engine and the package root.
export { Module, type StateDict, type StateDictLike, type LoadResult, type BufferOptions } from './module.ts';
export { Linear, Embedding, LayerNorm, RMSNorm, ReLU, SiLU, Tanh, Sigmoid, GELU, Flatten, ModuleList, Sequential, type InitOptions, type NormOptions } from './layers.ts';
export { Conv1d, Conv2d, BatchNorm1d, BatchNorm2d, MaxPool2d, AvgPool2d, Dropout, type ConvOptions, type BatchNormOptions, type PoolOptions } from './conv-layers.ts';
