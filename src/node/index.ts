// Node-only helpers: opening Dawn, reading checkpoints and datasets from disk, pretraining runs
// in a directory, and outputs checked before the work that writes them.
export { openGpu, type OpenOptions, type Backend } from './device.ts';
export { readCheckpoint } from './checkpoint-file.ts';
export { saveSafetensorsFile, loadSafetensorsFile } from './safetensors-file.ts';
export { loadDataset, readTable } from './dataset-file.ts';
export { openRunDirectory, checkResumable, runPretraining, PretrainRunError, type RunDirectory, type RunRecord, type PretrainRunOptions, type PretrainRunResult } from './pretrain-run.ts';
export { checkOutputFile, checkOutputDirectory, writeFileAtomic, OutputExistsError, OutputPathError } from './files.ts';
export { PredictionServer, OPENAPI_PATH, type HttpOptions } from './serve.ts';
