// Composite heads: prompts trained on the same model, concatenated so one batch answers
// several tasks. Each task keeps its own column range; restricted to it, the composite head
// gives exactly the task's own results.
import type { PromptCheckpoint } from './checkpoint.ts';
import type { Task } from './classifier.ts';

export class ComposeError extends Error {
  override name = 'ComposeError';
}

/**
 * Concatenates the heads of checkpoints trained on one model. Each task keeps reading its
 * own prompt: parts with identical prompt vectors share one prompt group, others get
 * their own, so a batch is encoded once and every prompt runs over the same past.
 */
export function composeHeads(parts: { source: string; checkpoint: PromptCheckpoint }[]): PromptCheckpoint {
  if (parts.length === 0) throw new ComposeError('nothing to compose');
  const first = parts[0]!;
  const C = first.checkpoint.model.config.nEmbd;
  const tasks: Task[] = [];
  const weights: Float32Array[] = [];
  const biases: Float32Array[] = [];
  const names = new Set<string>();
  const prompts: Float32Array[] = [];
  let start = 0;
  for (const { source, checkpoint } of parts) {
    if (checkpoint.model.fingerprint !== first.checkpoint.model.fingerprint) {
      throw new ComposeError(`${source} was trained on a different model than ${first.source}`);
    }
    if (checkpoint.promptTokens !== first.checkpoint.promptTokens) {
      throw new ComposeError(`${source} uses ${checkpoint.promptTokens} prompt tokens, ${first.source} uses ${first.checkpoint.promptTokens}`);
    }
    const P = checkpoint.promptTokens * C;
    // Map this part's prompt groups onto the composite's, sharing identical prompts.
    const groupMap = new Map<number, number>();
    for (let g = 0; g < checkpoint.params.prompt.length / P; g++) {
      const vectors = checkpoint.params.prompt.subarray(g * P, (g + 1) * P);
      let target = prompts.findIndex((p) => sameValues(p, vectors));
      if (target < 0) target = prompts.push(vectors) - 1;
      groupMap.set(g, target);
    }
    for (const task of checkpoint.tasks) {
      if (names.has(task.name)) throw new ComposeError(`task name '${task.name}' appears twice (in ${source})`);
      names.add(task.name);
      const width = task.labelNames.length;
      tasks.push({ ...task, start, group: groupMap.get(task.group ?? 0)! });
      weights.push(checkpoint.params.headWeight.subarray(task.start * C, (task.start + width) * C));
      biases.push(checkpoint.params.headBias.subarray(task.start, task.start + width));
      start += width;
    }
  }
  return {
    model: first.checkpoint.model,
    tasks,
    promptTokens: first.checkpoint.promptTokens,
    params: { prompt: concat(prompts), headWeight: concat(weights), headBias: concat(biases) },
    training: { composedFrom: parts.map((p) => p.source) },
  };
}

function sameValues(a: Float32Array, b: Float32Array): boolean {
  return a.length === b.length && a.every((v, i) => v === b[i]);
}

function concat(parts: Float32Array[]): Float32Array {
  const out = new Float32Array(parts.reduce((n, p) => n + p.length, 0));
  let offset = 0;
  for (const p of parts) {
    out.set(p, offset);
    offset += p.length;
  }
  return out;
}
