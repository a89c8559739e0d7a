// The study's results as a Markdown report, the published numbers beside ours.
import { formatReport } from '../metrics/classification.ts';
import type { CorrelationEntry } from '../metrics/correlation.ts';
import { formatP, formatR, type TaskEvaluation } from './evaluate.ts';
import { PUBLISHED, STUDY_EPOCHS, type StudyResult, type StudyStage } from './study.ts';

export interface ReportContext {
  model: string;
  adapter: string;
  imdb: string;
  semeval: string;
  /** When the report was made (ISO 8601). */
  date: string;
}

const NA = 'n/a';
const published = (table: Record<string, number> | null, label: string) => (table && label in table ? table[label]!.toFixed(2) : NA);

function row(cells: string[]): string {
  return `| ${cells.join(' | ')} |`;
}

function table(head: string[], rows: string[][]): string {
  return [row(head), row(head.map(() => '---')), ...rows.map(row)].join('\n');
}

/**
 * A task's classification report (scikit-learn's text) and its Pearson table. The same text
 * for the same evaluation, so a composite head's blocks can be compared with the task's own.
 */
function taskBlock(e: TaskEvaluation, study: Record<string, number> | null, reference: Record<string, number> | null): string {
  const pearson = table(
    ['label', 'r', 'p', 'r(prob)', 'study r', 'reference r'],
    e.pearson.map((c) => [c.label, formatR(c.r), formatP(c.p), formatR(c.probabilityR), published(study, c.label), published(reference, c.label)]),
  );
  return ['```text', formatReport(e.report).trimEnd(), '```', '', pearson].join('\n');
}

function correlations(entries: CorrelationEntry[], side: 'a' | 'b', name: string): string {
  return table([name, 'r', 'p', 'study r'], entries.map((e) => [e[side], formatR(e.r), formatP(e.p), NA]));
}

function stage(s: StudyStage): string {
  const study = s.epochs === 3 ? PUBLISHED.emotionPearson3 : null;
  const c = s.composite;
  return [
    `## After ${s.epochs} epochs`,
    '',
    '### IMDB sentiment (IMDB test)',
    '',
    taskBlock(s.sentiment, null, null),
    '',
    '### SemEval-2018 E-c emotions (SemEval dev)',
    '',
    taskBlock(s.emotion, study, PUBLISHED.referencePearson),
    '',
    '### Composite head (sentiment + emotion), restricted to each task',
    '',
    `Logits of each task's columns identical to the task's own prompt, bit for bit: ${c.identicalLogits ? 'yes' : 'NO'}. ` +
      `Reports identical to the two sections above: ${c.identicalReports ? 'yes' : 'NO'}.`,
    '',
    '#### sentiment (IMDB test)',
    '',
    taskBlock(c.sentiment, null, null),
    '',
    '#### emotion (SemEval dev)',
    '',
    taskBlock(c.emotion, study, PUBLISHED.referencePearson),
    '',
    '### Emotion of IMDB',
    '',
    "The emotion prompt's 0/1 predictions on IMDB test, each correlated with IMDB's true `good` indicator, sorted by r.",
    '',
    correlations(s.emotionOfImdb, 'a', 'emotion'),
    '',
    '### Sentiment of SemEval',
    '',
    "The sentiment prompt's 0/1 `good` prediction on SemEval dev, correlated with each true emotion, sorted by r.",
    '',
    correlations(s.sentimentOfSemeval, 'b', 'emotion'),
    '',
    '### Joy only (SemEval dev)',
    '',
    taskBlock(s.joy, null, PUBLISHED.referencePearson),
  ].join('\n');
}

export function studyMarkdown(result: StudyResult, context: ReportContext): string {
  const s = result.settings;
  const rows = s.rows;
  const losses = table(
    ['experiment', 'epochs', 'mean loss per epoch'],
    result.runs.map((r) => [r.name, String(r.epochs), r.history.map((h) => h.loss.toFixed(4)).join(', ')]),
  );
  return [
    '# gpt2-prompt: the study, rerun',
    '',
    table(
      ['', ''],
      [
        ['model', `${context.model} (fingerprint ${s.fingerprint.slice(0, 16)})`],
        ['adapter', context.adapter],
        ['IMDB', `${context.imdb}: ${rows.imdbTrain} train, ${rows.imdbTest} test rows`],
        ['SemEval-2018 E-c', `${context.semeval}: ${rows.semevalTrain} train, ${rows.semevalDev} dev rows`],
        ['settings', `${s.promptTokens} prompt vectors, batch ${s.batchSize}, Adam lr ${s.lr}, seed ${s.seed}; IMDB cross entropy, SemEval BCE with pos_weight = negatives/positives`],
        ['date', context.date],
      ],
    ),
    '',
    ...(s.limit !== null ? [`**Quick run (--limit ${s.limit}): ${s.limit} rows spread over each split. These numbers say nothing about the method.**`, ''] : []),
    "Pearson r and p (scipy.stats.pearsonr) are between each 0/1 predicted label (logit > 0 for emotions, argmax for sentiment) and the truth, as the study computes them; r(prob) correlates the predicted probability instead. `nan`: a constant column, r undefined.",
    '',
    'Published numbers: the study\'s Pearson r after 3 epochs for joy, anger, sadness and fear ("study r"), and the reference results it compares with (the SemEval paper\'s LSTM, "reference r"). ' +
      `Its other numbers (classification reports, the other emotions, 10 epochs, the cross-task tables, joy-only training) are not available here: ${NA}.`,
    '',
    '## Training',
    '',
    `The ${STUDY_EPOCHS[1]}-epoch runs continue the ${STUDY_EPOCHS[0]}-epoch checkpoints: each epoch's shuffle depends only on the seed and the epoch, so this is the ${STUDY_EPOCHS[1]}-epoch run.`,
    '',
    losses,
    '',
    ...result.stages.map((st) => stage(st) + '\n'),
  ].join('\n');
}
