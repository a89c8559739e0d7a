// Node-only helpers: opening Dawn, reading checkpoints and datasets from disk.
export { openGpu, type OpenOptions, type Backend } from './device.ts';
export { readCheckpoint } from './checkpoint-file.ts';
export { loadDataset, readTable } from './dataset-file.ts';
export { PredictionServer, OPENAPI_PATH, type HttpOptions } from './serve.ts';
