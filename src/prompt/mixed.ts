// Mixed-task inference: one frozen GPT-2 answers rows of different tasks in one pass. Each
// row's text is encoded once; then every row runs its own task's prompt over its own past
// (a per-row gather of prompts) and reads its own task's head columns. A row's logits are
// the ones it gets run alone with its task: rows never mix (the engine's outputs do not
// depend on batch or padding).
import { tidy, noGrad } from '../tensor/tensor.ts';
import type { GPT2, PastOptions } from '../gpt2/model.ts';
import { taskWidth, type PromptClassifier, type Task } from './classifier.ts';
import { encode, disposePast, tokenBatch } from './train.ts';
import { probabilities, argmaxRows } from './evaluate.ts';

/** One row of a mixed batch: a text's tokens and the tasks (indices into the classifier's tasks) it asks for. */
export interface MixedRow {
  tokens: Uint32Array;
  tasks: readonly number[];
}

/**
 * Logits of a mixed batch, one [K] array per row, filled in the columns of the row's tasks
 * (NaN elsewhere). The texts are encoded once; a row asking for tasks of several prompt groups
 * runs them in successive passes over the same past, each pass giving every row one of its groups.
 */
export async function mixedLogits(model: GPT2, classifier: PromptClassifier, rows: readonly MixedRow[], storage: PastOptions = {}): Promise<Float32Array[]> {
  const tasks = classifier.tasks;
  const K = classifier.classes;
  const rowGroups = rows.map((row, r) => {
    if (row.tasks.length === 0) throw new RangeError(`mixedLogits: row ${r} asks for no task`);
    const bad = row.tasks.find((t) => !Number.isInteger(t) || t < 0 || t >= tasks.length);
    if (bad !== undefined) throw new RangeError(`mixedLogits: row ${r} asks for task ${bad}, the classifier has ${tasks.length}`);
    return [...new Set(row.tasks.map((t) => tasks[t]!.group ?? 0))];
  });
  const out = rows.map(() => new Float32Array(K).fill(NaN));
  if (rows.length === 0) return out;
  const examples = rows.map((row) => ({ tokens: row.tokens, task: 0, label: 0, targets: null }));
  const past = encode(model, tokenBatch(examples, rows.map((_, r) => r)), storage);
  const passes = Math.max(...rowGroups.map((g) => g.length));
  // Rows with fewer groups than the pass count repeat their first group; those results are unread.
  const passGroups = Array.from({ length: passes }, (_, pass) => Uint32Array.from(rowGroups, (g) => g[pass] ?? g[0]!));
  const runs = passGroups.map((groups) => noGrad(() => tidy(() => classifier.rowLogits(model, past, groups))));
  disposePast(past);
  const values = await Promise.all(runs.map((t) => t.readF32().finally(() => t.dispose())));
  rows.forEach((row, r) => {
    rowGroups[r]!.forEach((group, pass) => {
      for (const t of row.tasks) {
        const task = tasks[t]!;
        if ((task.group ?? 0) !== group) continue;
        const from = r * K + task.start;
        out[r]!.set(values[pass]!.subarray(from, from + taskWidth(task)), task.start);
      }
    });
  });
  return out;
}

/** One task's answer for one text: the predicted label(s) and every label's probability. */
export type TaskPrediction = { label: string; scores: Record<string, number> } | { labels: string[]; scores: Record<string, number> };

/**
 * A task's prediction from a row's logits [K]: single-label tasks the argmax and the softmax,
 * multi-label tasks every label with a positive logit (as eval counts them) and the sigmoids.
 * The probabilities are those `predict` writes, unrounded.
 */
export function taskPrediction(task: Task, logits: Float32Array): TaskPrediction {
  const width = taskWidth(task);
  const own = logits.subarray(task.start, task.start + width);
  const probs = probabilities(own, width, task.kind);
  const scores = Object.fromEntries(task.labelNames.map((name, j) => [name, probs[j]!]));
  if (task.kind === 'single') return { label: task.labelNames[argmaxRows(own, width)[0]!]!, scores };
  return { labels: task.labelNames.filter((_, j) => own[j]! > 0), scores };
}
