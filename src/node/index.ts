// Node-only helpers: opening Dawn, reading checkpoints and datasets from disk.
export { openGpu, type OpenOptions, type Backend } from './device.js';
export { readCheckpoint } from './checkpoint-file.js';
export { loadDataset, readTable } from './dataset-file.js';
