// Predictions as rows a person reads: per text, every task's predicted label(s) and the
// probability of each label.
import type { GPT2 } from '../gpt2/model.ts';
import type { PromptClassifier, Task } from './classifier.ts';
import type { Tokenizer } from './fit.ts';
import { predictLogits, type Example } from './train.ts';
import { taskLogits, probabilities, argmaxRows } from './evaluate.ts';

export interface Predictions {
  /** Per task of every classifier: `<task>.label`, then `<task>.p(<label>)` per label. */
  columns: string[];
  /** One per text, keyed by column; probabilities rounded to 6 decimals. */
  rows: Record<string, string | number>[];
}

/** Unlabelled examples of texts, truncated to maxLength tokens. */
export function textExamples(texts: readonly string[], tokenizer: Tokenizer, maxLength: number): Example[] {
  return texts.map((text) => ({ tokens: Uint32Array.from(tokenizer.encode(text, maxLength)), task: 0, label: 0, targets: null }));
}

/**
 * Rows from predictLogits' output (one logits array per classifier, [N, classes]). Single-label tasks name
 * the argmax; multi-label tasks join every label with a positive logit with '|'.
 */
export function predictionRows(classifiers: readonly { tasks: readonly Task[]; classes: number }[], logits: readonly Float32Array[]): Predictions {
  const count = classifiers.length ? logits[0]!.length / classifiers[0]!.classes : 0;
  const columns: string[] = [];
  const rows: Record<string, string | number>[] = Array.from({ length: count }, () => ({}));
  classifiers.forEach((c, k) => {
    for (const task of c.tasks) {
      const width = task.labelNames.length;
      const own = taskLogits(logits[k]!, c.classes, task);
      const probs = probabilities(own, width, task.kind);
      const chosen = task.kind === 'single' ? argmaxRows(own, width) : null;
      columns.push(`${task.name}.label`, ...task.labelNames.map((l) => `${task.name}.p(${l})`));
      rows.forEach((row, n) => {
        row[`${task.name}.label`] = task.kind === 'single' ? task.labelNames[chosen![n]!]! : task.labelNames.filter((_, j) => own[n * width + j]! > 0).join('|');
        task.labelNames.forEach((l, j) => (row[`${task.name}.p(${l})`] = Number(probs[n * width + j]!.toFixed(6))));
      });
    }
  });
  return { columns, rows };
}

function csvField(v: string | number): string {
  const s = String(v);
  return /[",\n\r]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

/** Predictions as CSV with the texts in the first column (`gpt2-prompt predict --format csv`, the page's download). */
export function predictionsCsv(texts: readonly string[], predictions: Predictions): string {
  const { columns, rows } = predictions;
  return [['text', ...columns].map(csvField).join(','), ...rows.map((r, n) => [texts[n]!, ...columns.map((c) => r[c]!)].map(csvField).join(','))].join('\n') + '\n';
}

/** Classifies texts with trained prompts over one encoding of each batch. */
export async function classify(
  model: GPT2,
  tokenizer: Tokenizer,
  classifiers: readonly PromptClassifier[],
  texts: readonly string[],
  options: { maxLength: number; batchSize?: number; pastF16?: boolean; onBatch?: (done: number) => void },
): Promise<Predictions> {
  const examples = textExamples(texts, tokenizer, options.maxLength);
  const logits = await predictLogits(model, classifiers, examples, options.batchSize ?? 16, options.onBatch, { pastF16: options.pastF16 ?? false });
  return predictionRows(classifiers, logits);
}
