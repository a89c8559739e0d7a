// The package root: the engine (everything of gpt2-prompt/engine), GPT-2 on it, and the method,
// for embedding in any WebGPU host (browser, Deno, Node): hand a GPUDevice to `new Gpu(device)`.
export * from './engine.ts';

// GPT-2
export { GPT2, GPT2Block, GPT2Attention, GPT2MLP, Conv1D, ShardedEmbedding, loadGPT2, type LoadedGPT2, type ModelPast, type PastOptions, type TokenBatch } from './gpt2/model.ts';
export { parseConfig, type GPT2Config } from './gpt2/config.ts';
export { loadCheckpoint, fingerprint, type GPT2Checkpoint, type GPT2HostWeights } from './gpt2/checkpoint.ts';
export { parseSafetensors, encodeSafetensors, type SafetensorsFile } from './nn/safetensors.ts';
export { GPT2Tokenizer } from './gpt2/tokenizer.ts';

// The method: soft prompts and linear heads on the frozen model
export { PromptClassifier, type Task, type ClassifierParams } from './prompt/classifier.ts';
export { train, predictLogits, type Example, type TaskLoss, type TrainOptions } from './prompt/train.ts';
export { fit, freshParams, layoutTasks, toExamples, type Tokenizer, type FitTask, type FitOptions, type FitResult } from './prompt/fit.ts';
export { classify, predictionRows, predictionsCsv, textExamples, type Predictions } from './prompt/predict.ts';
export { evaluateTask, formatEvaluation, predictedLabels, crossTaskTable, type TaskEvaluation, type LabelCorrelation, type CrossTaskChoice } from './prompt/evaluate.ts';
export { defaultTask, DEFAULT_MODEL_DIR, DEFAULT_TRAINING, type DefaultTask, type ReadShipped } from './prompt/defaults.ts';
export { compareWithFixture, goldenReport, GOLDEN_TOLERANCE, type GoldenResult, type GoldenReport, type ReadFixture } from './prompt/golden.ts';
export { encodeCheckpoint, decodeCheckpoint, checkSameModel, textLength, type PromptCheckpoint, type ModelIdentity } from './prompt/checkpoint.ts';

// The published study, beside ours
export { runStudy, studyData, studyDataFacts, joyOrNot, JOY_CLASSES, STUDY_DATA, STUDY_EPOCHS, EMOTIONS, type StudyData, type StudyDataFacts, type StudyOptions, type StudyResult, type StudyStage, type StudyProgress, type PromptStore } from './prompt/study.ts';
export { studyMarkdown, type ReportContext } from './prompt/study-report.ts';
export { parsePublishedStudy, PUBLISHED_EXPERIMENTS, type PublishedStudy, type PublishedExperiment, type PublishedReport, type PublishedRow, type ReferenceTable } from './prompt/study-published.ts';
export { studyLossFigure } from './prompt/study-figure.ts';

// Mixed-task serving (host-neutral: the HTTP server is in gpt2-prompt/node)
export { mixedLogits, taskPrediction, type MixedRow, type TaskPrediction } from './prompt/mixed.ts';
export { Batcher, QueueFullError, ShuttingDownError, CancelledError, type BatchLimits, type BatchInfo, type BatcherHooks, type Answered } from './serve/batcher.ts';
export { MixedTaskService, UnknownTaskError, type ServedPrompt, type TaskInfo, type RowPredictions } from './serve/service.ts';

// GPT-2 from the Hugging Face Hub (or a mirror), resumable and kept in the page's storage
export { openHubModel, hubFileUrl, parseHubFileUrl, modelNeeds, whyNotFitting, cacheStorageStore, HUB_URL, DEFAULT_REPO, MODEL_FILES, type ModelStore, type ModelNeeds, type AdapterLimits, type HubModel, type HubModelOptions, type ModelFile } from './hub/hub.ts';
export { ResumableDownload, probeSize, InterruptedDownload, DownloadRefused, type DownloadProgress, type ResumableOptions } from './hub/download.ts';

// Data and metrics
export { parseTable, tableFormat, type Table } from './data/table.ts';
export { toDataset, spreadSubset, pickRows, holdOut, classCounts, withLabelColumns, parseLabelList, posWeights, DataError, type Dataset, type DatasetSpec } from './data/dataset.ts';
export { makeDemoDataset } from './data/demo.ts';
export { classificationReport, multilabelReport, formatReport } from './metrics/classification.ts';
export { pearson, correlationTable, kendallTau } from './metrics/correlation.ts';
