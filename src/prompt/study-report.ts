// The study's results as a Markdown report, every number the published study printed beside
// ours with the difference (Δ = ours − published).
import { pyFixed, type Report, type ReportRow } from '../metrics/classification.ts';
import { kendallTau, type CorrelationEntry } from '../metrics/correlation.ts';
import { formatP, formatR, type TaskEvaluation } from './evaluate.ts';
import { EMOTIONS, JOY_CLASSES, STUDY_EPOCHS, type StudyDataFacts, type StudyResult, type StudyStage } from './study.ts';
import type { PublishedExperiment, PublishedReport, PublishedRow, PublishedStudy } from './study-published.ts';

export interface ReportContext {
  model: string;
  adapter: string;
  imdb: string;
  semeval: string;
  /** When the report was made (ISO 8601). */
  date: string;
  /** Where the loss figure lies, relative to the report; no figure is linked when absent. */
  figure?: string;
}

const NA = 'n/a';

function row(cells: string[]): string {
  return `| ${cells.join(' | ')} |`;
}

function table(head: string[], rows: string[][]): string {
  return [row(head), row(head.map(() => '---')), ...rows.map(row)].join('\n');
}

/** ours − published at `digits` decimals, signed; "n/a" where either is missing. */
function delta(ours: number | undefined, published: number | undefined, digits: number): string {
  if (ours === undefined || published === undefined || Number.isNaN(ours)) return NA;
  const d = ours - published;
  if (Math.abs(d) < 0.5 * 10 ** -digits) return (0).toFixed(digits);
  return (d > 0 ? '+' : '') + d.toFixed(digits);
}

const fixed = (x: number | undefined, digits: number) => (x === undefined ? NA : pyFixed(x, digits));

/** A published number with all the digits the study printed (its r and p have six or seven). */
const asPrinted = (x: number | undefined) => (x === undefined ? NA : String(x));

/** A value as scikit-learn prints it in a report (two decimals), read back as a number. */
const printed = (x: number) => Number(pyFixed(x, 2));

/**
 * Our report beside the published one, row by row: each score as printed (two decimals) so that
 * Δ 0.00 means the same printed number; support is a count.
 */
function reportTable(ours: Report, published: PublishedReport | undefined): string {
  const scoreCells = (o: number | undefined, p: number | undefined) => [fixed(o, 2), fixed(p, 2), delta(o === undefined ? undefined : printed(o), p, 2)];
  const countCells = (o: number | undefined, p: number | undefined) => [o === undefined ? NA : String(o), p === undefined ? NA : String(p), delta(o, p, 0)];
  const line = (name: string, r: ReportRow | undefined, p: PublishedRow | undefined) => [
    name,
    ...scoreCells(r?.precision, p?.precision),
    ...scoreCells(r?.recall, p?.recall),
    ...scoreCells(r?.f1, p?.f1),
    ...countCells(r?.support, p?.support),
  ];
  const rows = ours.classes.map((r) => line(r.name, r, published?.labels[r.name]));
  if (ours.accuracy !== undefined || published?.accuracy) {
    // scikit-learn prints accuracy in the f1-score column, with the row count as support.
    const n = ours.accuracy === undefined ? undefined : ours.averages[0]!.support;
    rows.push(['accuracy', '', '', '', '', '', '', ...scoreCells(ours.accuracy, published?.accuracy?.value), ...countCells(n, published?.accuracy?.support)]);
  }
  for (const r of ours.averages) rows.push(line(r.name, r, published?.averages[r.name]));
  // A published row we have no counterpart for (another label set) still shows, beside n/a.
  const have = new Set(rows.map((r) => r[0]));
  for (const [name, p] of [...Object.entries(published?.labels ?? {}), ...Object.entries(published?.averages ?? {})]) {
    if (!have.has(name)) rows.push(line(name, undefined, p));
  }
  const head = ['', 'precision', 'published', 'Δ', 'recall', 'published', 'Δ', 'f1-score', 'published', 'Δ', 'support', 'published', 'Δ'];
  return table(head, rows);
}

const ONE_TABLE = 'The study printed this table once, without an epoch count, so the same published values stand beside both of ours.';

interface PearsonReference {
  /** The study's r and p per label, for this experiment. */
  study: Record<string, { r: number; p: number }>;
  /** The reference's name and its r per label. */
  name: string;
  r: Record<string, number>;
}

/**
 * A task's report and Pearson table beside the published ones. The same text for the same
 * evaluation and published numbers, so a composite head's blocks can be compared with the task's own.
 */
function taskBlock(e: TaskEvaluation, published: PublishedExperiment | undefined, reference: PearsonReference | null): string {
  const pearson = reference
    ? table(
        ['label', 'r', 'p', 'r(prob)', 'published r', 'published p', 'Δ r', reference.name],
        e.pearson.map((c) => {
          const study = reference.study[c.label];
          return [c.label, formatR(c.r), formatP(c.p), formatR(c.probabilityR), asPrinted(study?.r), asPrinted(study?.p), delta(c.r, study?.r, 4), fixed(reference.r[c.label], 2)];
        }),
      )
    : table(['label', 'r', 'p', 'r(prob)'], e.pearson.map((c) => [c.label, formatR(c.r), formatP(c.p), formatR(c.probabilityR)]));
  return [reportTable(e.report, published?.report), '', pearson].join('\n');
}

/** Our cross-task table (sorted by our r) beside the published r, with both rankings and Kendall's τ-b between them. */
function crossTable(entries: CorrelationEntry[], side: 'a' | 'b', published: Record<string, number>): string {
  const publishedRank = new Map(Object.entries(published).sort((u, v) => v[1] - u[1]).map(([label], i) => [label, i + 1]));
  const defined = entries.filter((e) => !Number.isNaN(e.r) && e[side] in published);
  const rows = entries.map((e, i) => {
    const p = published[e[side]];
    return [e[side], formatR(e.r), formatP(e.p), Number.isNaN(e.r) ? NA : String(i + 1), asPrinted(p), delta(e.r, p, 4), String(publishedRank.get(e[side]) ?? NA)];
  });
  const ours = new Set(entries.map((e) => e[side]));
  for (const [label, p] of Object.entries(published)) if (!ours.has(label)) rows.push([label, NA, NA, NA, asPrinted(p), NA, String(publishedRank.get(label))]);
  const tau = defined.length >= 2 ? kendallTau(defined.map((e) => e.r), defined.map((e) => published[e[side]]!)) : NaN;
  const left = entries.length - defined.length;
  const agreement =
    `Rank agreement with the published ordering, Kendall's τ-b over the ${defined.length} labels with a defined r: ` +
    `**${Number.isNaN(tau) ? 'undefined' : tau.toFixed(4)}** (1: the same order, 0: unrelated, −1: reversed)` +
    (left > 0 ? `; ${left} label${left === 1 ? '' : 's'} with r undefined (a constant column) left out.` : '.');
  return [table(['emotion', 'r', 'p', 'rank', 'published r', 'Δ r', 'published rank'], rows), '', agreement].join('\n');
}

function lossTable(name: string, ours: number[], published: number[] | undefined): string {
  const epochs = Math.max(ours.length, published?.length ?? 0);
  const cells = (values: number[] | undefined) => Array.from({ length: epochs }, (_, i) => fixed(values?.[i], 4));
  return table(
    [name, ...Array.from({ length: epochs }, (_, i) => `epoch ${i + 1}`)],
    [
      ['ours', ...cells(ours)],
      ['published', ...cells(published)],
      ['Δ', ...Array.from({ length: epochs }, (_, i) => delta(ours[i], published?.[i], 4))],
    ],
  );
}

function dataTables(facts: StudyDataFacts, published: PublishedStudy): string {
  const d = published.data;
  const dev = published.experiments[`emotion-${STUDY_EPOCHS[0]}`]!.report.labels;
  const sentimentReport = published.experiments[`sentiment-${STUDY_EPOCHS[0]}`]!.report.labels;
  const counts3 = (ours: number, p: number | undefined) => [String(ours), p === undefined ? NA : String(p), delta(ours, p, 0)];
  const count = (what: string, ours: number, p: number | undefined) => [what, ...counts3(ours, p)];
  const rowCounts = table(['fact', 'ours', 'published', 'Δ'], [
    count('IMDB train rows', facts.imdb.trainRows, d.imdb.trainRows),
    ...Object.entries(facts.imdb.trainLabelCounts).map(([label, n]) => count(`IMDB train \`${label}\``, n, d.imdb.trainLabelCounts[label])),
    count("IMDB test rows (the study's validation split)", facts.imdb.testRows, d.imdb.testRows),
    ...Object.entries(facts.imdb.testLabelCounts).map(([label, n]) => count(`IMDB test \`${label}\` (report support)`, n, sentimentReport[label]?.support)),
    count('SemEval train rows', facts.semeval.trainRows, d.semeval.trainRows),
    count('SemEval dev rows', facts.semeval.devRows, d.semeval.devRows),
  ]);
  const weight = (x: number | undefined, p: number | undefined, digits: number) => [fixed(x, digits), fixed(p, digits), delta(x, p, digits)];
  const perEmotion = table(
    ['emotion', 'train frequency', 'published', 'Δ', 'pos_weight', 'published', 'Δ', 'dev support', 'published', 'Δ'],
    EMOTIONS.map((e) => [
      e,
      ...weight(facts.semeval.trainPositiveFraction[e], d.semeval.trainPositiveFraction[e], 6),
      ...weight(facts.semeval.posWeight[e], d.semeval.posWeight[e], 6),
      ...counts3(facts.semeval.devSupport[e]!, dev[e]?.support),
    ]),
  );
  const joy = table(['joy-only class', 'balanced class weight', 'published', 'Δ'], JOY_CLASSES.map((c) => [c, ...weight(facts.semeval.joyBalancedClassWeights[c], d.semeval.joyBalancedClassWeights[c], 4)]));
  return [rowCounts, '', perEmotion, '', joy].join('\n');
}

/** The sentiment block: report and Pearson table, and the IMDB accuracies the study compared with. */
function sentimentBlock(e: TaskEvaluation, epochs: number, published: PublishedStudy): string {
  const experiment = published.experiments[`sentiment-${epochs}`];
  const token = published.references.goodBadTokenAccuracy[String(epochs)];
  return [
    taskBlock(e, experiment, null),
    '',
    `Accuracy: ours ${fixed(e.report.accuracy, 2)}, the study's ${fixed(experiment?.report.accuracy?.value, 2)}. What the study compared with: ` +
      `the good/bad-token prompt (the LM head's \`good\` against \`bad\` token) ${fixed(token, 2)} after ${epochs} epochs; the IMDB state of the art ${fixed(published.references.imdbStateOfTheArt, 2)}.`,
  ].join('\n');
}

function stage(s: StudyStage, published: PublishedStudy): string {
  const experiment = (task: string) => published.experiments[`${task}-${s.epochs}`];
  const lstm = published.references.lstmPearson;
  const lstmRow = lstm.rows[lstm.comparedWith]!;
  const lstmR = Object.fromEntries(lstm.columns.flatMap((label, k) => (lstmRow[k] === null ? [] : [[label, lstmRow[k]!]])));
  const emotionReference: PearsonReference = { study: experiment('emotion')?.pearson ?? {}, name: `LSTM r (${lstm.comparedWith})`, r: lstmR };
  const joyReference: PearsonReference = { ...emotionReference, study: experiment('joy')?.pearson ?? {} };
  const c = s.composite;
  return [
    `## After ${s.epochs} epochs`,
    '',
    '### IMDB sentiment (IMDB test)',
    '',
    sentimentBlock(s.sentiment, s.epochs, published),
    '',
    '### SemEval-2018 E-c emotions (SemEval dev)',
    '',
    taskBlock(s.emotion, experiment('emotion'), emotionReference),
    '',
    '### Composite head (sentiment + emotion), restricted to each task',
    '',
    `Logits of each task's columns identical to the task's own prompt, bit for bit: ${c.identicalLogits ? 'yes' : 'NO'}. ` +
      `Reports identical to the two sections above: ${c.identicalReports ? 'yes' : 'NO'}. (The study found the same: its composite head's restricted reports equal its 3-epoch task reports exactly.)`,
    '',
    '#### sentiment (IMDB test)',
    '',
    sentimentBlock(c.sentiment, s.epochs, published),
    '',
    '#### emotion (SemEval dev)',
    '',
    taskBlock(c.emotion, experiment('emotion'), emotionReference),
    '',
    '### Emotion of IMDB',
    '',
    "The emotion prompt's 0/1 predictions on IMDB test, each correlated with IMDB's true `good` indicator, sorted by our r; the study's table (Pearson r only) beside it. " + ONE_TABLE,
    '',
    crossTable(s.emotionOfImdb, 'a', published.crossTask.emotionOfImdb),
    '',
    '### Sentiment of SemEval',
    '',
    "The sentiment prompt's 0/1 `good` prediction on SemEval dev, correlated with each true emotion, sorted by our r; the study's table (Pearson r only) beside it. " + ONE_TABLE,
    '',
    crossTable(s.sentimentOfSemeval, 'b', published.crossTask.sentimentOfSemeval),
    '',
    '### Joy only (SemEval dev)',
    '',
    `Two classes (${JOY_CLASSES.join(', ')}), cross entropy with balanced class weights, as the study trains it.`,
    '',
    taskBlock(s.joy, experiment('joy'), joyReference),
  ].join('\n');
}

/** Micro- and macro-F1 of a report (the leaderboard's columns), from its averages. */
function averageF1(report: Report, name: string): number | undefined {
  return report.averages.find((a) => a.name === name)?.f1;
}

function references(result: StudyResult, published: PublishedStudy): string {
  const board = published.references.leaderboard;
  const at = (name: string) => board.columns.indexOf(name);
  const cell = (v: number | null | undefined, digits: number) => (v === null || v === undefined ? NA : pyFixed(v, digits));
  const leaderboard = table(
    ['system', 'micro-F1', 'macro-F1', ...(at('accuracy') >= 0 ? ['accuracy (Jaccard)'] : [])],
    [
      ...Object.entries(board.rows).map(([name, v]) => [name, cell(v[at('micro-f1')], 3), cell(v[at('macro-f1')], 3), ...(at('accuracy') >= 0 ? [cell(v[at('accuracy')], 3)] : [])]),
      ...result.stages.map((s) => [`**ours, ${s.epochs} epochs**`, cell(averageF1(s.emotion.report, 'micro avg'), 3), cell(averageF1(s.emotion.report, 'macro avg'), 3), ...(at('accuracy') >= 0 ? [NA] : [])]),
    ],
  );
  const lstm = published.references.lstmPearson;
  const oursR = (s: StudyStage) => lstm.columns.map((label) => {
    const c = s.emotion.pearson.find((x) => x.label === label);
    return c ? formatR(c.r) : NA;
  });
  const studyR = (epochs: number) => lstm.columns.map((label) => asPrinted(published.experiments[`emotion-${epochs}`]?.pearson[label]?.r));
  const lstmTable = table(
    ['system', ...lstm.columns],
    [
      ...Object.entries(lstm.rows).map(([name, v]) => [name === lstm.comparedWith ? `${name} (the study's comparison)` : name, ...v.map((x) => cell(x, 2))]),
      ...STUDY_EPOCHS.map((epochs) => [`the study, ${epochs} epochs`, ...studyR(epochs)]),
      ...result.stages.map((s) => [`**ours, ${s.epochs} epochs**`, ...oursR(s)]),
    ],
  );
  const top = published.references.officialTop;
  const official = table(['entry', ...Object.keys(top.scores)], [[top.user, ...Object.values(top.scores).map((v) => pyFixed(v, 3))]]);
  return [
    '## References the study compared with',
    '',
    '### SemEval-2018 E-c leaderboard',
    '',
    "Micro- and macro-F1 of the emotion task on SemEval dev. The leaderboard's accuracy is the Jaccard index of each tweet's label sets, which neither the study nor this report computes for the prompt.",
    '',
    leaderboard,
    '',
    '### SemEval-2018 LSTM baselines (Pearson r)',
    '',
    "The SemEval-2018 paper's LSTM results, the study's Pearson r (0/1 predicted label against the truth) and ours. Valence is a different subtask: neither the study nor we predict it.",
    '',
    lstmTable,
    '',
    '### The official SemEval-2018 top entry the study quoted',
    '',
    official,
    '',
    `The study's caveat: ${top.note}.`,
  ].join('\n');
}

export function studyMarkdown(result: StudyResult, context: ReportContext, published: PublishedStudy): string {
  const s = result.settings;
  const rows = s.rows;
  const [short, long] = STUDY_EPOCHS;
  const losses = result.runs.map((r) => lossTable(r.name, r.history.map((h) => h.loss), published.experiments[r.name]?.meanLoss));
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
        ['settings', `${s.promptTokens} prompt vectors, batch ${s.batchSize}, texts cut at ${s.maxLength} tokens, Adam lr ${s.lr}, seed ${s.seed}; IMDB cross entropy, SemEval BCE with pos_weight = negatives/positives, joy only cross entropy with balanced class weights`],
        ['date', context.date],
      ],
    ),
    '',
    ...(s.limit !== null
      ? [
          `**Quick run (--limit ${s.limit}): ${s.limit} rows spread over each split. These numbers say nothing about the method, and the comparison with the published study is meaningless for a subset: it is shown for its layout only.**`,
          '',
        ]
      : []),
    '## Beside the published study',
    '',
    `Source: ${published.source}`,
    '',
    "The study's notes on its numbers:",
    '',
    ...published.notes.map((n) => `- ${n}`),
    '',
    'Every table sets ours beside them, with Δ = ours − published. Classification reports are compared as printed: ours rounded to two decimals as scikit-learn prints them, so Δ 0.00 means the same printed number. ' +
      'Supports and the data facts are facts of the data: on the full data they must agree exactly (Δ 0). n/a: the study printed no such number.',
    '',
    `How the runs differ: the study's ${long}-epoch runs were fresh runs, trained from a new initialisation (their first epoch's loss differs from the ${short}-epoch run's). ` +
      `Ours continue the ${short}-epoch checkpoints: each epoch's shuffle depends only on the seed and the epoch, so our ${long}-epoch run's first ${short} epochs are the ${short}-epoch run. ` +
      `Our initialisation and shuffles are not the study's either, and it ran on a CUDA GPU with texts cut at 1000 tokens, ours at ${s.maxLength} (the model's positions less the prompt), so even with the real GPT-2 weights the numbers can agree only up to run-to-run variation.`,
    '',
    "Pearson r and p (scipy.stats.pearsonr) are between each 0/1 predicted label (logit > 0 for emotions, argmax for single-label tasks) and the truth, as the study computes them; r(prob) correlates the predicted probability instead (the study does not). `nan`: a constant column, r undefined.",
    '',
    '## Data',
    '',
    "The data facts the study printed, from the data this run used" + (s.limit !== null ? ' (a subset: they cannot agree)' : '') + '. pos_weight = negatives / positives per emotion on SemEval train; joy only: scikit-learn\'s balanced class weights.',
    '',
    dataTables(result.facts, published),
    '',
    '## Training',
    '',
    'Mean training loss per epoch, ours against the study\'s.',
    '',
    ...(context.figure ? [`![Mean training loss per epoch of each experiment, ours (solid) against the study's (dashed)](${context.figure})`, ''] : []),
    losses.join('\n\n'),
    '',
    ...result.stages.map((st) => stage(st, published) + '\n'),
    references(result, published),
    '',
  ].join('\n');
}
