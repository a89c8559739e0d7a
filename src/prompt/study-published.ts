// The numbers the published study printed (data/study/published.json), read into typed form
// with every missing or mistyped field named by its path, so a report never sets "undefined"
// beside a result. The file's keys are its own (snake_case); here they are this code's.

/** One printed row of a classification report (two decimals, as scikit-learn prints them). */
export interface PublishedRow {
  precision: number;
  recall: number;
  f1: number;
  support: number;
}

export interface PublishedReport {
  /** Per class or label, in the printed order. */
  labels: Record<string, PublishedRow>;
  /** "micro avg", "macro avg", "weighted avg", "samples avg", as printed. */
  averages: Record<string, PublishedRow>;
  /** Single-label reports only. */
  accuracy?: { value: number; support: number };
}

export interface PublishedExperiment {
  epochs: number;
  /** Mean training loss of each epoch. */
  meanLoss: number[];
  report: PublishedReport;
  /** Pearson r and p of some labels' 0/1 predictions with the truth. */
  pearson: Record<string, { r: number; p: number }>;
}

/** A table of reference results: named rows over named columns; null where a source printed nothing. */
export interface ReferenceTable {
  columns: string[];
  rows: Record<string, (number | null)[]>;
}

export interface PublishedStudy {
  source: string;
  notes: string[];
  data: {
    imdb: { trainRows: number; trainLabelCounts: Record<string, number>; testRows: number };
    semeval: {
      trainRows: number;
      devRows: number;
      labels: string[];
      trainPositiveFraction: Record<string, number>;
      posWeight: Record<string, number>;
      joyBalancedClassWeights: Record<string, number>;
    };
  };
  /** By experiment name: sentiment-3, sentiment-10, emotion-3, emotion-10, joy-3, joy-10. */
  experiments: Record<string, PublishedExperiment>;
  /** Pearson r by emotion: the emotion prompt on IMDB against `good`; the sentiment prompt's `good` on SemEval against each emotion. */
  crossTask: { emotionOfImdb: Record<string, number>; sentimentOfSemeval: Record<string, number> };
  references: {
    /** The good/bad-token prompt's IMDB accuracy, by epoch count. */
    goodBadTokenAccuracy: Record<string, number>;
    imdbStateOfTheArt: number;
    /** The SemEval-2018 paper's LSTM Pearson table, and the row the study compared with. */
    lstmPearson: ReferenceTable & { comparedWith: string };
    /** The SemEval-2018 E-c leaderboard (accuracy, micro-F1, macro-F1), the study's own row included. */
    leaderboard: ReferenceTable;
    /** The official SemEval-2018 results' top entry the study quoted, with its caveat. */
    officialTop: { user: string; scores: Record<string, number>; note: string };
  };
}

type Json = unknown;

class Reader {
  constructor(private readonly source: string) {}

  fail(path: string, what: string, value: Json): never {
    throw new RangeError(`${this.source}: ${path} must be ${what}, got ${JSON.stringify(value) ?? 'nothing'}`);
  }

  object(v: Json, path: string): Record<string, Json> {
    if (typeof v !== 'object' || v === null || Array.isArray(v)) this.fail(path, 'an object', v);
    return v as Record<string, Json>;
  }

  number(v: Json, path: string): number {
    if (typeof v !== 'number' || !Number.isFinite(v)) this.fail(path, 'a finite number', v);
    return v as number;
  }

  string(v: Json, path: string): string {
    if (typeof v !== 'string') this.fail(path, 'a string', v);
    return v as string;
  }

  array<T>(v: Json, path: string, item: (x: Json, path: string) => T): T[] {
    if (!Array.isArray(v)) this.fail(path, 'an array', v);
    return (v as Json[]).map((x, i) => item(x, `${path}[${i}]`));
  }

  record<T>(v: Json, path: string, item: (x: Json, path: string) => T): Record<string, T> {
    const o = this.object(v, path);
    return Object.fromEntries(Object.entries(o).map(([k, x]) => [k, item(x, `${path}.${k}`)]));
  }

  numbers = (v: Json, path: string) => this.record(v, path, (x, p) => this.number(x, p));

  row = (v: Json, path: string): PublishedRow => {
    const o = this.object(v, path);
    return { precision: this.number(o.precision, `${path}.precision`), recall: this.number(o.recall, `${path}.recall`), f1: this.number(o.f1, `${path}.f1`), support: this.number(o.support, `${path}.support`) };
  };

  table(v: Json, path: string): ReferenceTable {
    const o = this.object(v, path);
    const columns = this.array(o.columns, `${path}.columns`, (x, p) => this.string(x, p));
    const rows = this.record(o.rows, `${path}.rows`, (x, p) => {
      const cells = this.array(x, p, (c, q) => (c === null ? null : this.number(c, q)));
      if (cells.length !== columns.length) this.fail(p, `${columns.length} values (one per column)`, x);
      return cells;
    });
    return { columns, rows };
  }
}

/** The experiments a published study must hold: the rerun's names. */
export const PUBLISHED_EXPERIMENTS = ['sentiment-3', 'sentiment-10', 'emotion-3', 'emotion-10', 'joy-3', 'joy-10'];

/** Reads and checks published.json's content (parsed JSON); `source` names it in errors. */
export function parsePublishedStudy(json: Json, source = 'published study'): PublishedStudy {
  const r = new Reader(source);
  const top = r.object(json, 'the file');
  const data = r.object(top.data, 'data');
  const imdb = r.object(data.imdb, 'data.imdb');
  const semeval = r.object(data.semeval, 'data.semeval');
  const experimentsJson = r.object(top.experiments, 'experiments');
  const experiments: Record<string, PublishedExperiment> = {};
  for (const name of PUBLISHED_EXPERIMENTS) {
    const path = `experiments.${name}`;
    const e = r.object(experimentsJson[name], path);
    const epochs = r.number(e.epochs, `${path}.epochs`);
    const meanLoss = r.array(e.mean_loss, `${path}.mean_loss`, (x, p) => r.number(x, p));
    if (meanLoss.length !== epochs) r.fail(`${path}.mean_loss`, `${epochs} values (one per epoch)`, e.mean_loss);
    const report = r.object(e.report, `${path}.report`);
    const accuracy = report.accuracy === undefined ? undefined : r.object(report.accuracy, `${path}.report.accuracy`);
    experiments[name] = {
      epochs,
      meanLoss,
      report: {
        labels: r.record(report.labels, `${path}.report.labels`, r.row),
        averages: r.record(report.averages, `${path}.report.averages`, r.row),
        ...(accuracy ? { accuracy: { value: r.number(accuracy.value, `${path}.report.accuracy.value`), support: r.number(accuracy.support, `${path}.report.accuracy.support`) } } : {}),
      },
      pearson: e.pearson === undefined ? {} : r.record(e.pearson, `${path}.pearson`, (x, p) => {
        const c = r.object(x, p);
        return { r: r.number(c.r, `${p}.r`), p: r.number(c.p, `${p}.p`) };
      }),
    };
  }
  const cross = r.object(top.cross_task, 'cross_task');
  const refs = r.object(top.references, 'references');
  const official = r.object(refs.semeval_official_top, 'references.semeval_official_top');
  const lstm = r.object(refs.semeval_lstm_pearson, 'references.semeval_lstm_pearson');
  const lstmTable = r.table(lstm, 'references.semeval_lstm_pearson');
  const comparedWith = r.string(lstm.compared_with, 'references.semeval_lstm_pearson.compared_with');
  if (!(comparedWith in lstmTable.rows)) r.fail('references.semeval_lstm_pearson.compared_with', `one of its rows (${Object.keys(lstmTable.rows).join(', ')})`, comparedWith);
  return {
    source: r.string(top.source, 'source'),
    notes: r.array(top.notes, 'notes', (x, p) => r.string(x, p)),
    data: {
      imdb: { trainRows: r.number(imdb.train_rows, 'data.imdb.train_rows'), trainLabelCounts: r.numbers(imdb.train_label_counts, 'data.imdb.train_label_counts'), testRows: r.number(imdb.validation_rows, 'data.imdb.validation_rows') },
      semeval: {
        trainRows: r.number(semeval.train_rows, 'data.semeval.train_rows'),
        devRows: r.number(semeval.dev_rows, 'data.semeval.dev_rows'),
        labels: r.array(semeval.labels, 'data.semeval.labels', (x, p) => r.string(x, p)),
        trainPositiveFraction: r.numbers(semeval.train_positive_fraction, 'data.semeval.train_positive_fraction'),
        posWeight: r.numbers(semeval.pos_weight, 'data.semeval.pos_weight'),
        joyBalancedClassWeights: r.numbers(semeval.joy_balanced_class_weights, 'data.semeval.joy_balanced_class_weights'),
      },
    },
    experiments,
    crossTask: { emotionOfImdb: r.numbers(cross.emotion_of_imdb, 'cross_task.emotion_of_imdb'), sentimentOfSemeval: r.numbers(cross.sentiment_of_semeval, 'cross_task.sentiment_of_semeval') },
    references: {
      goodBadTokenAccuracy: r.numbers(refs.good_bad_token_prompt_accuracy_imdb, 'references.good_bad_token_prompt_accuracy_imdb'),
      imdbStateOfTheArt: r.number(refs.imdb_state_of_the_art_accuracy, 'references.imdb_state_of_the_art_accuracy'),
      lstmPearson: { ...lstmTable, comparedWith },
      leaderboard: r.table(refs.semeval_ec_leaderboard, 'references.semeval_ec_leaderboard'),
      officialTop: {
        user: r.string(official.user, 'references.semeval_official_top.user'),
        scores: Object.fromEntries(Object.entries(official).filter(([k]) => k !== 'user' && k !== 'note').map(([k, v]) => [k, r.number(v, `references.semeval_official_top.${k}`)])),
        note: r.string(official.note, 'references.semeval_official_top.note'),
      },
    },
  };
}
