// The `gpt2-prompt` command line: a thin layer over the method and the engine.
import { readFile } from 'node:fs/promises';
import { cac } from 'cac';
import type { TrainFlags } from './train.ts';
import type { RunFlags } from './evaluate.ts';
import { trainCommand } from './train.ts';
import { evalCommand, predictCommand, correlateCommand } from './evaluate.ts';
import { weightsDownload, weightsInfo, formatWeightsInfo } from './weights.ts';
import { generateCommand } from './generate.ts';
import { reproduceCommand, type ReproduceFlags } from './reproduce.ts';
import { pretrainCommand, type PretrainFlags } from './pretrain.ts';
import { serveCommand, SERVE_DEFAULTS, type ServeFlags } from './serve.ts';
import { pageCommand } from './page.ts';
import { composeHeads } from '../prompt/compose.ts';
import { encodeCheckpoint, decodeCheckpoint } from '../prompt/checkpoint.ts';
import { DEFAULT_TRAINING } from '../prompt/defaults.ts';
import { writeFileAtomic, checkOutputFile } from '../node/files.ts';
import { reportError, UsageError } from './common.ts';

/**
 * Every value given for `flag`, verbatim: the parser turns numeric-looking values into numbers
 * ("007" → 7, "" → 0), which must not happen to texts.
 */
function rawValues(argv: string[], flag: string): string[] {
  const values: string[] = [];
  argv.forEach((arg, i) => {
    if (arg === flag && i + 1 < argv.length) values.push(argv[i + 1]!);
    else if (arg.startsWith(`${flag}=`)) values.push(arg.slice(flag.length + 1));
  });
  return values;
}

/** Flags whose values are names, paths or texts: taken verbatim from argv. */
const STRING_FLAGS = ['model', 'data', 'val', 'tasks', 'name', 'textColumn', 'labelColumn', 'labelColumns', 'labels', 'predicted', 'against', 'imdb', 'semeval', 'work', 'out', 'task', 'format', 'backend', 'repo'];

/** Flags that may be given more than once, each time adding a value. */
const REPEATABLE_FLAGS = new Set(['prompt', 'text']);

function verbatim<T extends object>(flags: T, argv: string[]): T {
  const out = { ...flags } as Record<string, unknown>;
  // A flag given twice counts once, its last value (as for the string flags below), rather
  // than as the two values joined by a comma.
  for (const [key, value] of Object.entries(out)) if (Array.isArray(value) && !REPEATABLE_FLAGS.has(key)) out[key] = value.at(-1);
  for (const key of STRING_FLAGS) {
    if (out[key] === undefined || typeof out[key] === 'boolean') continue;
    const values = rawValues(argv, `--${key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`);
    if (values.length) out[key] = values.at(-1);
  }
  const prompts = rawValues(argv, '--prompt');
  if (prompts.length) out.prompt = prompts;
  return out as T;
}

/** One option as cac declares it: name with its value, description, and config (a default). */
type OptionSpec = readonly [name: string, description: string, config?: { default?: unknown }];

/** Declares a command's options, given as groups shared between commands. */
function withOptions<C extends { option(name: string, description: string, config?: { default?: unknown }): C }>(command: C, ...groups: readonly OptionSpec[][]): C {
  for (const group of groups) for (const [name, description, config] of group) command.option(name, description, config);
  return command;
}

// Option groups several commands share.
const MODEL: OptionSpec[] = [['--model <dir>', 'GPT-2 checkpoint: a directory with config.json + model.safetensors (default: the small model shipped in weights/small-gpt2)']];
const DEVICE: OptionSpec[] = [['--backend <name>', 'WebGPU backend: auto, vulkan, opengles, metal, d3d12 (default: GPT2_PROMPT_BACKEND, else auto)']];
const COLUMNS = (labelColumns: string): OptionSpec[] => [
  ['--text-column <name>', 'Text column', { default: 'text' }],
  ['--label-column <name>', 'Single-label: the label column', { default: 'label' }],
  ['--label-columns <a,b,...>', labelColumns],
];
const CACHE: OptionSpec[] = [
  ['--cache-mb <n>', "GPU memory for keeping texts' pasts across epochs", { default: 1024 }],
  ['--host-cache-mb <n>', 'Host memory for pasts beyond --cache-mb (both 0: recompute the past every epoch, as the original method)', { default: 4096 }],
];
/** Running prompts over data: batches, a progress bar. */
const PREDICTING: OptionSpec[] = [
  ['--batch-size <n>', 'Batch size', { default: 16 }],
  ['--quiet', 'No progress bar'],
];
const OUTPUT = (out: OptionSpec, force = 'Overwrite an existing --out file'): OptionSpec[] => [out, ['--force', force]];

function buildCli(argv: string[]) {
  const cli = cac('gpt2-prompt');

  withOptions(
    cli.command('train', 'Train a soft prompt + linear head on a frozen GPT-2 (no --data: a built-in demo task)'),
    MODEL,
    [
      ['--data <file>', 'Training data: .parquet (incl. .gz.parquet), .csv, .tsv or .jsonl'],
      ['--val <file>', 'Validation data, reported after every epoch'],
      ['--tasks <file>', 'Multi-task training: a JSON array of {name, data, val?, textColumn, labelColumn | labelColumns, labels?}'],
      ['--name <name>', 'Task name', { default: 'task' }],
    ],
    COLUMNS('Multi-label: the 0/1 label columns'),
    [
      ['--labels <a,b,...>', 'Single-label: label names in index order (default: sorted unique values)'],
      ['--prompt-tokens <n>', 'Number of prompt vectors', { default: DEFAULT_TRAINING.promptTokens }],
      ['--epochs <n>', 'Epochs (default 3; the demo 6)'],
      ['--batch-size <n>', 'Batch size', { default: DEFAULT_TRAINING.batchSize }],
      ['--max-length <n>', 'Text tokens kept per example (default: n_positions − prompt tokens)'],
      ['--lr <x>', 'Adam learning rate', { default: DEFAULT_TRAINING.lr }],
      ['--seed <n>', 'Seed for initialisation and shuffling', { default: DEFAULT_TRAINING.seed }],
      ['--class-weights <balanced|none>', 'Single-label class weights', { default: 'none' }],
      ['--pos-weight <auto|none|w1,w2,...>', 'Multi-label pos_weight (auto: negatives/positives per label)', { default: 'auto' }],
    ],
    CACHE,
    [['--cache-f16', 'Keep the pasts in half precision: twice as many fit --cache-mb and --host-cache-mb, losses move slightly (validation uses them too)']],
    OUTPUT(['--out <file>', 'Prompt file to write (after every epoch)', { default: 'prompt.gpt2p' }]),
    [['--resume', 'Continue training the --out file from its last complete epoch']],
    DEVICE,
    [
      ['--quiet', 'No progress bars'],
      ['--profile <file>', 'Profile the third training step (after two warm-up steps) and write its trace (Chrome Trace Event JSON, for Perfetto); the summary goes to stderr'],
    ],
  ).action((flags: TrainFlags) => trainCommand(verbatim(flags, argv)));

  withOptions(
    cli.command('pretrain', 'Train a GPT-2 language model from random weights on texts (every weight, tied head); --model reads the result'),
    [
      ['--data <file>', 'Texts to learn from: .parquet (incl. .gz.parquet), .csv, .tsv or .jsonl'],
      ['--text-column <name>', 'Text column (default: text)'],
      ['--out <dir>', 'Checkpoint directory (default: pretrained)'],
      ['--layers <n>', 'Transformer blocks (default 4)'],
      ['--embd <n>', 'Width n_embd (default 128)'],
      ['--heads <n>', 'Attention heads (default 4)'],
      ['--positions <n>', 'n_positions (default: --seq-len)'],
      ['--seq-len <n>', 'Tokens per training sequence (default 128)'],
      ['--batch-size <n>', 'Sequences per micro-batch (default 8)'],
      ['--accumulation <n>', 'Micro-batches per update: gradient accumulation (default 1)'],
      ['--steps <n>', 'Updates in the run (the cosine schedule ends there)'],
      ['--lr <x>', 'Peak learning rate (default 1e-3)'],
      ['--min-lr <x>', 'Learning rate at the end of the cosine (default 1e-4)'],
      ['--warmup <n>', 'Updates of linear warm-up (default 50)'],
      ['--weight-decay <x>', 'AdamW weight decay of matrices and embeddings (default 0.1)'],
      ['--clip <x>', 'Clip the global gradient norm to this; 0: no clipping (default 1)'],
      ['--seed <n>', 'Seed of the initial weights and the data order (default 0)'],
      ['--save-every <minutes>', 'Checkpoint interval (default 5)'],
      ['--max-minutes <m>', 'Stop (and save) after this long; continue later with --resume'],
      ['--log-every <n>', 'Progress line every n updates (default 10)'],
      ['--resume', 'Continue the run in --out from its last checkpoint, exactly as if it had not stopped'],
      ['--force', 'Start over, replacing a run in --out'],
    ],
    DEVICE,
    [['--quiet', 'No progress output']],
  ).action((flags: PretrainFlags) => pretrainCommand(verbatim(flags, argv)));

  withOptions(
    cli.command('eval', 'Classification report (scikit-learn numbers) and Pearson r and p of each 0/1 predicted label (scipy numbers) on labelled data'),
    MODEL,
    [
      ['--prompt <file>', 'Trained prompt file'],
      ['--data <file>', 'Labelled data'],
      ['--task <name>', 'Which task of a composite prompt file'],
    ],
    COLUMNS("Multi-label: the label columns (default: the task's label names)"),
    [['--json', 'Machine-readable output']],
    PREDICTING,
    DEVICE,
  ).action((flags: RunFlags) => evalCommand(verbatim(flags, argv)));

  withOptions(
    cli.command('predict', 'Labels and probabilities for texts; several --prompt files run over one encoding of the texts'),
    MODEL,
    [
      ['--prompt <file>', 'Trained prompt file (repeat for several tasks)'],
      ['--data <file>', 'Texts to classify'],
      ['--text <text>', 'A text to classify (repeatable)'],
      ['--text-column <name>', 'Text column', { default: 'text' }],
      ['--format <jsonl|csv>', 'Output format', { default: 'jsonl' }],
    ],
    OUTPUT(['--out <file>', 'Write to a file instead of stdout']),
    PREDICTING,
    DEVICE,
  ).action((flags: RunFlags) => predictCommand({ ...verbatim(flags, argv), text: rawValues(argv, '--text') }));

  withOptions(
    cli.command('correlate', "Pearson r and p of one task's 0/1 predicted labels with each label of another dataset, sorted"),
    MODEL,
    [
      ['--prompt <file>', 'Trained prompt file'],
      ['--task <name>', 'Which task of a composite prompt file'],
      ['--data <file>', "The other task's labelled data"],
    ],
    COLUMNS('Multi-label 0/1 columns of the data'),
    [
      ['--predicted <a,b,...>', "The task's labels to correlate (default: all)"],
      ['--against <a,b,...>', "The data's labels to correlate with (default: all)"],
      ['--json', 'Machine-readable output'],
    ],
    PREDICTING,
    DEVICE,
  ).action((flags: RunFlags) => correlateCommand(verbatim(flags, argv)));

  withOptions(
    cli.command('reproduce', 'The published study in one run: IMDB and SemEval after 3 and 10 epochs, the composite head, both cross-task tables, joy only; a Markdown report'),
    MODEL,
    [
      ['--imdb <dir>', 'IMDB: a directory with train.gz.parquet and test.gz.parquet'],
      ['--semeval <dir>', 'SemEval-2018 E-c: a directory with train.tsv and dev.tsv'],
    ],
    OUTPUT(['--out <file>', 'The Markdown report', { default: 'study.md' }], 'Overwrite an existing report'),
    [
      ['--work <dir>', "Each experiment's prompt file, kept so a rerun resumes (default: the report's name + .runs)"],
      ['--limit <n>', 'A quick run: n rows spread over each split'],
      ['--seed <n>', 'Seed for initialisation and shuffling', { default: 0 }],
    ],
    CACHE,
    DEVICE,
    [['--quiet', 'No progress bars']],
  ).action((flags: ReproduceFlags) => reproduceCommand(verbatim(flags, argv)));

  cli
    .command('compose <...prompts>', 'Concatenate heads of prompts trained on the same model into one composite prompt file')
    .option('--out <file>', 'Composite prompt file to write')
    .option('--force', 'Overwrite an existing --out file')
    .action(async (paths: string[], flags: { out?: string; force?: boolean }) => {
      if (!flags.out) throw new UsageError('--out FILE is required');
      await checkOutputFile(flags.out, { overwrite: Boolean(flags.force) });
      const parts = await Promise.all(paths.map(async (source) => ({ source, checkpoint: decodeCheckpoint(new Uint8Array(await readFile(source)), source) })));
      const composite = composeHeads(parts);
      await writeFileAtomic(flags.out, encodeCheckpoint(composite), { overwrite: Boolean(flags.force) });
      process.stderr.write(`wrote ${flags.out}: ${composite.tasks.map((t) => `${t.name} [${t.start}, ${t.start + t.labelNames.length})`).join(', ')}\n`);
    });

  withOptions(
    cli.command('serve', 'Serve prompt files over HTTP: POST /predict batches requests of any of their tasks into one GPT-2 pass (docs/serving.md)'),
    MODEL,
    [
      ['--prompt <file>', 'Trained prompt file (repeat for several; task names must be unique)'],
      ['--host <host>', `Address to listen on (default ${SERVE_DEFAULTS.host})`],
      ['--port <n>', `Port (default ${SERVE_DEFAULTS.port}; 0: any free port)`],
      ['--max-batch-rows <n>', `Texts one GPT-2 pass takes at most (default ${SERVE_DEFAULTS.maxBatchRows})`],
      ['--max-batch-tokens <n>', `Padded tokens (texts × longest) one pass takes at most (default ${SERVE_DEFAULTS.maxBatchTokens})`],
      ['--pass-cost-tokens <n>', `A pass's fixed cost in padded tokens: a batch of mixed lengths runs as passes of similar lengths where that saves more padding (default ${SERVE_DEFAULTS.passCostTokens})`],
      ['--max-queued-rows <n>', `Texts that may wait; beyond, requests get 429 (default ${SERVE_DEFAULTS.maxQueuedRows})`],
      ['--max-client-batch <n>', `Inputs one request may carry; beyond, 413 (default ${SERVE_DEFAULTS.maxClientBatch})`],
      ['--payload-limit <bytes>', `Request body size; beyond, 413 (default ${SERVE_DEFAULTS.payloadLimit}, 2 MB)`],
      ['--shutdown-timeout <seconds>', `On SIGTERM/SIGINT, time to answer accepted requests (default ${SERVE_DEFAULTS.shutdownTimeout})`],
    ],
    DEVICE,
  ).action((flags: ServeFlags) => serveCommand(verbatim(flags, argv)));

  cli
    .command('page', 'Serve the browser page (train a classifier on your own file, GPT-2 from the Hub or the shipped model, in WebGPU) on 127.0.0.1')
    .option('--port <n>', 'Port (0: any free port)', { default: 8000 })
    .action((flags: { port?: number }) => pageCommand(flags));

  cli
    .command('weights <action> [path]', 'download [dir] (default weights/gpt2): fetch openai-community/gpt2; info <path>: describe a checkpoint')
    .option('--force', 'Download again over existing files')
    .option('--repo <owner/name>', 'Hub repository', { default: 'openai-community/gpt2' })
    .action(async (action: string, path: string | undefined, flags: { force?: boolean; repo?: string }) => {
      if (action === 'download') {
        const info = await weightsDownload(path ?? 'weights/gpt2', { force: Boolean(flags.force), repo: flags.repo ?? 'openai-community/gpt2' });
        process.stdout.write(formatWeightsInfo(info) + '\n');
      } else if (action === 'info') {
        if (!path) throw new UsageError('weights info needs a PATH (a checkpoint directory or .safetensors file)');
        process.stdout.write(formatWeightsInfo(await weightsInfo(path)) + '\n');
      } else {
        throw new UsageError(`unknown weights action '${action}': use download or info`);
      }
    });

  withOptions(
    cli.command('generate <text>', 'Continue a text with the tied LM head (a sanity check for real weights)'),
    MODEL,
    [
      ['--tokens <n>', 'Tokens to generate', { default: 20 }],
      ['--temperature <t>', '0 for greedy, else sampled', { default: 0 }],
      ['--seed <n>', 'Sampling seed', { default: 0 }],
    ],
    DEVICE,
  ).action((text: string, flags: Parameters<typeof generateCommand>[1]) => generateCommand(text, flags));

  cli.help();
  cli.version('0.1.0');
  return cli;
}

/** Every option that takes a value, as typed ("--lr"). */
function valueOptions(cli: ReturnType<typeof cac>): Set<string> {
  const options = [...cli.globalCommand.options, ...cli.commands.flatMap((c) => c.options)];
  return new Set(options.filter((o) => /[<[]/.test(o.rawName)).map((o) => o.rawName.split(/[ ,]/)[0]!));
}

/**
 * `--lr -1` gives --lr the value -1: the parser would otherwise read "-1" as an unknown short
 * option. Joined as "--lr=-1", the value reaches the option's own check and its message.
 */
function joinNegativeValues(argv: string[], takesValue: Set<string>): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const next = argv[i + 1];
    if (takesValue.has(arg) && next !== undefined && /^-(\d|\.\d|Infinity)/.test(next)) {
      out.push(`${arg}=${next}`);
      i++;
    } else out.push(arg);
  }
  return out;
}

/** The parser's own errors (unknown option, missing value or argument) as one usage line. */
function parserError(error: Error, command: string | undefined): UsageError {
  // It names options in camelCase; the user typed kebab-case.
  const message = error.message.replace(/`--([A-Za-z0-9]+)`/g, (_, name: string) => `\`--${name.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}\``);
  return new UsageError(`${message} (see gpt2-prompt ${command ? `${command} ` : ''}--help)`);
}

/** Runs the command line `argv` (as process.argv: node, script, args…); resolves to the exit code. */
export async function run(rawArgv: string[]): Promise<number> {
  // The commands read the argv filled in here, once the options they define are known.
  const argv: string[] = [];
  const cli = buildCli(argv);
  argv.push(...joinNegativeValues(rawArgv, valueOptions(cli)));
  try {
    const parsed = cli.parse(argv, { run: false });
    if (!cli.matchedCommand) {
      if (parsed.options.help || parsed.options.version) return 0;
      cli.outputHelp();
      if (parsed.args.length) process.stderr.write(`gpt2-prompt: unknown command '${parsed.args[0]}'\n`);
      return parsed.args.length ? 1 : 0;
    }
    await cli.runMatchedCommand();
    return 0;
  } catch (error) {
    const e = error as Error;
    return reportError(e?.name === 'CACError' ? parserError(e, cli.matchedCommandName) : error);
  }
}
