// `weights download` and `weights info`: fetching GPT-2 from the Hugging Face hub and
// describing a checkpoint on disk without loading its data.
import { mkdir, readFile } from 'node:fs/promises';
import { exists, checkOutputDirectory } from '../node/files.ts';
import { join } from 'node:path';
import { planCheckpoint } from '../gpt2/checkpoint.ts';
import { parseConfig, type GPT2Config } from '../gpt2/config.ts';
import { readSafetensorsHeader, resolveCheckpointPaths } from '../node/checkpoint-file.ts';
import { downloadFile } from '../node/download.ts';
import { formatBytes, ProgressBar } from '../node/progress.ts';
import { DEFAULT_REPO, HUB_URL, MODEL_FILES as FILES, hubFileUrl } from '../hub/hub.ts';


export interface WeightsDownloadOptions {
  /** Download again even when the files are there. */
  force?: boolean;
  /** Hub repository, `owner/name` (default openai-community/gpt2). */
  repo?: string;
  /** Hub base URL (tests point it at a local server). */
  baseUrl?: string;
  /** Per-file progress; without it a progress bar is drawn on stderr. */
  onProgress?: (file: string, received: number, total: number | undefined) => void;
  /** Status lines (default: stderr). */
  log?: (line: string) => void;
}

export interface WeightsInfo {
  configPath: string;
  modelPath: string;
  fileSize: number;
  config: GPT2Config;
  /** Every tensor in the file, including buffers GPT-2 does not use. */
  tensorCount: number;
  parameterCount: number;
  dtypes: string[];
  /** Tensors in the file that the model does not use. */
  ignored: string[];
}

/**
 * Downloads config.json and model.safetensors of `repo` into `dir` (resumable; files already
 * there are kept unless `force`), then checks that they form a GPT-2 checkpoint.
 */
export async function weightsDownload(dir: string, options: WeightsDownloadOptions = {}): Promise<WeightsInfo> {
  const repo = options.repo ?? DEFAULT_REPO;
  const log = options.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  await checkOutputDirectory(dir);
  await mkdir(dir, { recursive: true });
  const present = await Promise.all(FILES.map((f) => exists(join(dir, f))));
  if (!options.force && present.every(Boolean)) {
    throw new Error(`${dir} already holds ${FILES.join(' and ')}; use --force to download them again`);
  }
  for (const [i, file] of FILES.entries()) {
    const dest = join(dir, file);
    if (present[i] && !options.force) {
      log(`${dest} is already there; keeping it`);
      continue;
    }
    const url = hubFileUrl(options.baseUrl ?? HUB_URL, repo, file);
    let bar: ProgressBar | undefined;
    const onProgress = options.onProgress
      ? (received: number, total: number | undefined) => options.onProgress!(file, received, total)
      : (received: number, total: number | undefined) => {
          bar ??= new ProgressBar({ label: file, total, unit: 'bytes' });
          bar.update(received);
        };
    try {
      await downloadFile(url, dest, { force: options.force, onProgress });
    } finally {
      bar?.done();
    }
  }
  return weightsInfo(dir);
}

/** Config, tensor and parameter counts and dtypes, checked against GPT-2's layout from the header alone. */
export async function weightsInfo(path: string): Promise<WeightsInfo> {
  const { configPath, modelPath } = await resolveCheckpointPaths(path);
  const config = parseConfig(await readFile(configPath, 'utf8'), configPath);
  const header = await readSafetensorsHeader(modelPath);
  const plan = planCheckpoint(config, header.entries, modelPath);
  return {
    configPath,
    modelPath,
    fileSize: header.fileSize,
    config,
    tensorCount: header.entries.size,
    parameterCount: plan.parameterCount,
    dtypes: plan.dtypes,
    ignored: plan.ignored,
  };
}

export function formatWeightsInfo(info: WeightsInfo): string {
  const c = info.config;
  const lines = [
    `checkpoint   ${info.modelPath} (${formatBytes(info.fileSize)})`,
    `config       ${info.configPath}`,
    `layers       ${c.nLayer}, heads ${c.nHead}, n_embd ${c.nEmbd}`,
    `vocab        ${c.vocabSize}, positions ${c.nPositions}`,
    `activation   ${c.activation}, layer_norm_epsilon ${c.layerNormEps}`,
    `tensors      ${info.tensorCount} in the file`,
    `parameters   ${info.parameterCount.toLocaleString('en-US')} (${(info.parameterCount / 1e6).toFixed(1)}M)`,
    `dtype        ${info.dtypes.join(', ')}`,
  ];
  if (info.ignored.length > 0) lines.push(`unused       ${info.ignored.join(', ')}`);
  return lines.join('\n');
}
