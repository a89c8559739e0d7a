// What a run uses when the user names no model or data: the CLI without flags and the browser
// example both come here, so they train the same task on the same model.
import type { Dataset } from '../data/dataset.ts';
import { makeDemoDataset } from '../data/demo.ts';

/** The model shipped with the package, as a directory relative to the package root. */
export const DEFAULT_MODEL_DIR = 'weights/small-gpt2';

/** Training settings when the user gives none (the CLI's flag defaults). */
export const DEFAULT_TRAINING = { promptTokens: 5, batchSize: 8, lr: 1e-3, seed: 0 } as const;

/** Reads a file shipped with the package by its path relative to the package root (Node: readFile; a page: fetch). */
export type ReadShipped = (path: string) => Promise<Uint8Array>;

export interface DefaultTask {
  name: string;
  train: Dataset;
  val: Dataset;
  /** Epochs when the user gives none. */
  epochs: number;
  /** One line for the user: what is being trained. */
  description: string;
}

const DEMO_TRAIN = 2000;
const DEMO_VAL = 400;

/** The task trained when no data is given. `read` fetches any shipped data it needs. */
export async function defaultTask(seed: number, _read: ReadShipped): Promise<DefaultTask> {
  return {
    name: 'demo-sentiment',
    train: makeDemoDataset(DEMO_TRAIN, seed + 1),
    val: makeDemoDataset(DEMO_VAL, seed + 1000),
    epochs: 6,
    description: `the demo task (${DEMO_TRAIN} synthetic reviews with lexical sentiment cues, ${DEMO_VAL} for validation)`,
  };
}
