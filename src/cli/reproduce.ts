// `gpt2-prompt reproduce`: the published study in one command. The study itself is
// src/prompt/study.ts; here are its files (one prompt file per experiment in a work directory,
// so a rerun resumes), progress bars, and the Markdown report with its loss figure beside it,
// both setting the published study's numbers (data/study/published.json) beside ours.
import { mkdir, readFile } from 'node:fs/promises';
import { basename, join, resolve } from 'node:path';
import { encodeCheckpoint } from '../prompt/checkpoint.ts';
import { runStudy, STUDY_DATA, type PromptStore, type StudyData, type StudyProgress } from '../prompt/study.ts';
import { studyMarkdown } from '../prompt/study-report.ts';
import { studyLossFigure } from '../prompt/study-figure.ts';
import { parsePublishedStudy, type PublishedStudy } from '../prompt/study-published.ts';
import { loadDataset } from '../node/dataset-file.ts';
import { exists, writeFileAtomic, checkOutputFile, checkOutputDirectory } from '../node/files.ts';
import { ProgressBar } from '../node/progress.ts';
import { openSession, closeSession, readPromptFile, readShipped, positiveInt, integer, nonNegativeNumber, UsageError } from './common.ts';

/** The published study's numbers, shipped with the package. */
const PUBLISHED_FILE = 'data/study/published.json';

async function readPublished(): Promise<PublishedStudy> {
  return parsePublishedStudy(JSON.parse(new TextDecoder().decode(await readShipped(PUBLISHED_FILE))), PUBLISHED_FILE);
}

export interface ReproduceFlags {
  model?: string;
  imdb?: string;
  semeval?: string;
  out?: string;
  work?: string;
  limit?: number | string;
  seed?: number | string;
  cacheMb?: number | string;
  hostCacheMb?: number | string;
  force?: boolean;
  backend?: string;
  quiet?: boolean;
}

/** The study's four files, checked to exist before anything runs. */
async function studyFiles(imdb: string, semeval: string): Promise<Record<keyof StudyData, string>> {
  const files = {
    imdbTrain: join(imdb, STUDY_DATA.imdb.train),
    imdbTest: join(imdb, STUDY_DATA.imdb.test),
    semevalTrain: join(semeval, STUDY_DATA.semeval.train),
    semevalDev: join(semeval, STUDY_DATA.semeval.dev),
  };
  for (const path of Object.values(files)) {
    if (!(await exists(path))) throw new UsageError(`${path} not found (--imdb DIR holds ${STUDY_DATA.imdb.train} and ${STUDY_DATA.imdb.test}, --semeval DIR ${STUDY_DATA.semeval.train} and ${STUDY_DATA.semeval.dev})`);
  }
  return files;
}

async function loadStudyData(files: Record<keyof StudyData, string>): Promise<StudyData> {
  return {
    imdbTrain: await loadDataset(files.imdbTrain, STUDY_DATA.imdb.spec),
    imdbTest: await loadDataset(files.imdbTest, STUDY_DATA.imdb.spec),
    semevalTrain: await loadDataset(files.semevalTrain, STUDY_DATA.semeval.spec),
    semevalDev: await loadDataset(files.semevalDev, STUDY_DATA.semeval.spec),
  };
}

/** Prompt files in the work directory, one per experiment, checked against the model. */
function fileStore(dir: string, identity: Parameters<typeof readPromptFile>[1]): PromptStore {
  const path = (name: string) => join(dir, `${name}.gpt2p`);
  return {
    read: async (name) => ((await exists(path(name))) ? readPromptFile(path(name), identity) : null),
    write: (name, checkpoint) => writeFileAtomic(path(name), encodeCheckpoint(checkpoint), { overwrite: true }),
  };
}

/**
 * The work directory records what its prompts were trained on; resuming with other data, limit
 * or seed would mix two studies, so it is refused.
 */
async function claimWorkDir(dir: string, manifest: Record<string, unknown>): Promise<void> {
  await mkdir(dir, { recursive: true });
  const file = join(dir, 'study.json');
  const text = JSON.stringify(manifest, null, 1) + '\n';
  if (await exists(file)) {
    const before = await readFile(file, 'utf8');
    if (before !== text) {
      throw new UsageError(`${dir} holds a study run with other settings (${file}: ${JSON.stringify(JSON.parse(before))}); give another --work directory, or delete it to start over`);
    }
    return;
  }
  await writeFileAtomic(file, text);
}

function progressPrinter(quiet: boolean, log: (line: string) => void): { onProgress: (e: StudyProgress) => void; done: () => void } {
  let bar: ProgressBar | null = null;
  const finish = () => {
    bar?.done();
    bar = null;
  };
  const onProgress = (e: StudyProgress) => {
    switch (e.kind) {
      case 'experiment':
        finish();
        log(
          `[${e.index + 1}/${e.total}] ${e.name}: ${e.epochs} epochs on ${e.examples} examples` +
            (e.startEpoch >= e.epochs ? ' (done before)' : e.startEpoch > 0 ? ` (resuming after epoch ${e.startEpoch})` : ''),
        );
        break;
      case 'step':
        if (quiet) break;
        if (e.step === 0) {
          finish();
          bar = new ProgressBar({ label: `${e.name} epoch ${e.epoch + 1}/${e.epochs}`, total: e.steps });
        }
        bar?.update(e.step + 1, `loss ${e.loss.toFixed(4)}`);
        break;
      case 'epoch':
        finish();
        log(`  epoch ${e.epoch + 1}/${e.epochs}: mean loss ${e.meanLoss.toFixed(4)} (${e.seconds.toFixed(1)} s)`);
        break;
      case 'predict':
        if (quiet) break;
        if (e.done === 0 || bar === null) {
          finish();
          bar = new ProgressBar({ label: `predict ${e.data}`, total: e.total });
        }
        bar.update(e.done);
        break;
    }
  };
  return { onProgress, done: finish };
}

export async function reproduceCommand(flags: ReproduceFlags): Promise<void> {
  if (!flags.imdb) throw new UsageError('--imdb DIR is required (it holds train.gz.parquet and test.gz.parquet)');
  if (!flags.semeval) throw new UsageError('--semeval DIR is required (it holds train.tsv and dev.tsv)');
  const out = flags.out ?? 'study.md';
  const stem = out.replace(/\.md$/i, '');
  const figure = `${stem}.svg`;
  for (const path of [out, figure]) await checkOutputFile(path, { overwrite: Boolean(flags.force) });
  const work = flags.work ?? `${stem}.runs`;
  await checkOutputDirectory(work);
  const limit = flags.limit === undefined ? undefined : positiveInt(flags.limit, '--limit');
  const seed = integer(flags.seed ?? 0, '--seed');
  const cacheBytes = nonNegativeNumber(flags.cacheMb ?? 1024, '--cache-mb') * 2 ** 20;
  const hostCacheBytes = nonNegativeNumber(flags.hostCacheMb ?? 4096, '--host-cache-mb') * 2 ** 20;
  const log = (line: string) => process.stderr.write(line + '\n');

  const files = await studyFiles(flags.imdb, flags.semeval);
  const published = await readPublished();
  const session = await openSession(flags.model, flags.backend as never);
  const printer = progressPrinter(Boolean(flags.quiet), log);
  const onSigint = () => {
    printer.done();
    log(`\ninterrupted: ${work} keeps every experiment's last complete epoch; the same command resumes`);
    process.exit(130);
  };
  process.once('SIGINT', onSigint);
  try {
    await claimWorkDir(work, { fingerprint: session.identity.fingerprint, imdb: resolve(flags.imdb), semeval: resolve(flags.semeval), limit: limit ?? null, seed });
    const data = await loadStudyData(files);
    log(`reproducing the study in ${work} on ${session.gpu.adapterName}`);
    const result = await runStudy(session.model, session.tokenizer, data, fileStore(work, session.identity), {
      identity: session.identity,
      seed,
      cacheBytes,
      hostCacheBytes,
      ...(limit !== undefined ? { limit } : {}),
      onProgress: printer.onProgress,
    });
    printer.done();
    const context = { model: session.modelPath, adapter: session.gpu.adapterName, imdb: flags.imdb, semeval: flags.semeval, date: new Date().toISOString(), figure: basename(figure) };
    const note = limit !== undefined ? `Quick run (--limit ${limit}): the comparison is meaningless for a subset.` : undefined;
    await writeFileAtomic(figure, studyLossFigure(result.runs, published, note), { overwrite: Boolean(flags.force) });
    await writeFileAtomic(out, studyMarkdown(result, context, published), { overwrite: Boolean(flags.force) });
    log(`wrote ${out} and ${figure}`);
  } finally {
    process.off('SIGINT', onSigint);
    closeSession(session);
  }
}
