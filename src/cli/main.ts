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
import { composeHeads } from '../prompt/compose.ts';
import { encodeCheckpoint, decodeCheckpoint } from '../prompt/checkpoint.ts';
import { DEFAULT_TRAINING } from '../prompt/defaults.ts';
import { writeFileAtomic } from '../node/files.ts';
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

function buildCli(argv: string[]) {
  const cli = cac('gpt2-prompt');

  const modelOption = ['--model <dir>', 'GPT-2 checkpoint: a directory with config.json + model.safetensors (default: the small model shipped in weights/small-gpt2)'] as const;
  const backendOption = ['--backend <name>', 'WebGPU backend: auto, vulkan, opengles, metal, d3d12 (env GPT2_PROMPT_BACKEND)'] as const;

  cli
    .command('train', 'Train a soft prompt + linear head on a frozen GPT-2 (no --data: a built-in demo task)')
    .option(...modelOption)
    .option('--data <file>', 'Training data: .parquet (incl. .gz.parquet), .csv, .tsv or .jsonl')
    .option('--val <file>', 'Validation data, reported after every epoch')
    .option('--tasks <file>', 'Multi-task training: a JSON array of {name, data, val?, textColumn, labelColumn | labelColumns, labels?}')
    .option('--name <name>', 'Task name', { default: 'task' })
    .option('--text-column <name>', 'Text column', { default: 'text' })
    .option('--label-column <name>', 'Single-label: the label column', { default: 'label' })
    .option('--label-columns <a,b,...>', 'Multi-label: the 0/1 label columns')
    .option('--labels <a,b,...>', 'Single-label: label names in index order (default: sorted unique values)')
    .option('--prompt-tokens <n>', 'Number of prompt vectors', { default: DEFAULT_TRAINING.promptTokens })
    .option('--epochs <n>', 'Epochs (default 3; the demo 6)')
    .option('--batch-size <n>', 'Batch size', { default: DEFAULT_TRAINING.batchSize })
    .option('--max-length <n>', 'Text tokens kept per example (default: n_positions − prompt tokens)')
    .option('--lr <x>', 'Adam learning rate', { default: DEFAULT_TRAINING.lr })
    .option('--seed <n>', 'Seed for initialisation and shuffling', { default: DEFAULT_TRAINING.seed })
    .option('--class-weights <balanced|none>', 'Single-label class weights', { default: 'none' })
    .option('--pos-weight <auto|none|w1,w2,...>', 'Multi-label pos_weight (auto: negatives/positives per label)', { default: 'auto' })
    .option('--cache-mb <n>', 'GPU memory for keeping texts\' pasts across epochs', { default: 1024 })
    .option('--host-cache-mb <n>', 'Host memory for pasts beyond --cache-mb (both 0: recompute the past every epoch, as the original method)', { default: 4096 })
    .option('--cache-f16', 'Keep the pasts in half precision: twice as many fit --cache-mb and --host-cache-mb, losses move slightly (validation uses them too)')
    .option('--out <file>', 'Prompt file to write (after every epoch)', { default: 'prompt.gpt2p' })
    .option('--force', 'Overwrite an existing --out file')
    .option('--resume', 'Continue training the --out file from its last complete epoch')
    .option(...backendOption)
    .option('--quiet', 'No progress bars')
    .action((flags: TrainFlags) => trainCommand(verbatim(flags, argv)));

  cli
    .command('pretrain', 'Train a GPT-2 language model from random weights on texts (every weight, tied head); --model reads the result')
    .option('--data <file>', 'Texts to learn from: .parquet (incl. .gz.parquet), .csv, .tsv or .jsonl')
    .option('--text-column <name>', 'Text column (default: text)')
    .option('--out <dir>', 'Checkpoint directory (default: pretrained)')
    .option('--layers <n>', 'Transformer blocks (default 4)')
    .option('--embd <n>', 'Width n_embd (default 128)')
    .option('--heads <n>', 'Attention heads (default 4)')
    .option('--positions <n>', 'n_positions (default: --seq-len)')
    .option('--seq-len <n>', 'Tokens per training sequence (default 128)')
    .option('--batch-size <n>', 'Sequences per micro-batch (default 8)')
    .option('--accumulation <n>', 'Micro-batches per update: gradient accumulation (default 1)')
    .option('--steps <n>', 'Updates in the run (the cosine schedule ends there)')
    .option('--lr <x>', 'Peak learning rate (default 1e-3)')
    .option('--min-lr <x>', 'Learning rate at the end of the cosine (default 1e-4)')
    .option('--warmup <n>', 'Updates of linear warm-up (default 50)')
    .option('--weight-decay <x>', 'AdamW weight decay of matrices and embeddings (default 0.1)')
    .option('--clip <x>', 'Clip the global gradient norm to this; 0: no clipping (default 1)')
    .option('--seed <n>', 'Seed of the initial weights and the data order (default 0)')
    .option('--save-every <minutes>', 'Checkpoint interval (default 5)')
    .option('--max-minutes <m>', 'Stop (and save) after this long; continue later with --resume')
    .option('--log-every <n>', 'Progress line every n updates (default 10)')
    .option('--resume', 'Continue the run in --out from its last checkpoint, exactly as if it had not stopped')
    .option('--force', 'Start over, replacing a run in --out')
    .option(...backendOption)
    .option('--quiet', 'No progress output')
    .action((flags: PretrainFlags) => pretrainCommand(verbatim(flags, argv)));

  cli
    .command('eval', 'Classification report (scikit-learn numbers) and Pearson r and p of each 0/1 predicted label (scipy numbers) on labelled data')
    .option(...modelOption)
    .option('--prompt <file>', 'Trained prompt file')
    .option('--data <file>', 'Labelled data')
    .option('--task <name>', 'Which task of a composite prompt file')
    .option('--text-column <name>', 'Text column', { default: 'text' })
    .option('--label-column <name>', 'Single-label: the label column', { default: 'label' })
    .option('--label-columns <a,b,...>', 'Multi-label: the label columns (default: the task\'s label names)')
    .option('--batch-size <n>', 'Batch size', { default: 16 })
    .option('--json', 'Machine-readable output')
    .option(...backendOption)
    .option('--quiet', 'No progress bar')
    .action((flags: RunFlags) => evalCommand(verbatim(flags, argv)));

  cli
    .command('predict', 'Labels and probabilities for texts; several --prompt files run over one encoding of the texts')
    .option(...modelOption)
    .option('--prompt <file>', 'Trained prompt file (repeat for several tasks)')
    .option('--data <file>', 'Texts to classify')
    .option('--text <text>', 'A text to classify (repeatable)')
    .option('--text-column <name>', 'Text column', { default: 'text' })
    .option('--format <jsonl|csv>', 'Output format', { default: 'jsonl' })
    .option('--out <file>', 'Write to a file instead of stdout')
    .option('--force', 'Overwrite an existing --out file')
    .option('--batch-size <n>', 'Batch size', { default: 16 })
    .option(...backendOption)
    .option('--quiet', 'No progress bar')
    .action((flags: RunFlags) => predictCommand({ ...verbatim(flags, argv), text: rawValues(argv, '--text') }));

  cli
    .command('correlate', "Pearson r and p of one task's 0/1 predicted labels with each label of another dataset, sorted")
    .option(...modelOption)
    .option('--prompt <file>', 'Trained prompt file')
    .option('--task <name>', 'Which task of a composite prompt file')
    .option('--data <file>', "The other task's labelled data")
    .option('--text-column <name>', 'Text column', { default: 'text' })
    .option('--label-column <name>', 'Single-label column of the data', { default: 'label' })
    .option('--label-columns <a,b,...>', 'Multi-label 0/1 columns of the data')
    .option('--predicted <a,b,...>', "The task's labels to correlate (default: all)")
    .option('--against <a,b,...>', "The data's labels to correlate with (default: all)")
    .option('--batch-size <n>', 'Batch size', { default: 16 })
    .option('--json', 'Machine-readable output')
    .option(...backendOption)
    .option('--quiet', 'No progress bar')
    .action((flags: RunFlags) => correlateCommand(verbatim(flags, argv)));

  cli
    .command('reproduce', 'The published study in one run: IMDB and SemEval after 3 and 10 epochs, the composite head, both cross-task tables, joy only; a Markdown report')
    .option(...modelOption)
    .option('--imdb <dir>', 'IMDB: a directory with train.gz.parquet and test.gz.parquet')
    .option('--semeval <dir>', 'SemEval-2018 E-c: a directory with train.tsv and dev.tsv')
    .option('--out <file>', 'The Markdown report', { default: 'study.md' })
    .option('--work <dir>', "Each experiment's prompt file, kept so a rerun resumes (default: the report's name + .runs)")
    .option('--limit <n>', 'A quick run: n rows spread over each split')
    .option('--seed <n>', 'Seed for initialisation and shuffling', { default: 0 })
    .option('--cache-mb <n>', "GPU memory for keeping texts' pasts across epochs", { default: 1024 })
    .option('--host-cache-mb <n>', 'Host memory for pasts beyond --cache-mb', { default: 4096 })
    .option('--force', 'Overwrite an existing report')
    .option(...backendOption)
    .option('--quiet', 'No progress bars')
    .action((flags: ReproduceFlags) => reproduceCommand(verbatim(flags, argv)));

  cli
    .command('compose <...prompts>', 'Concatenate heads of prompts trained on the same model into one composite prompt file')
    .option('--out <file>', 'Composite prompt file to write')
    .option('--force', 'Overwrite an existing --out file')
    .action(async (paths: string[], flags: { out?: string; force?: boolean }) => {
      if (!flags.out) throw new UsageError('--out FILE is required');
      const parts = await Promise.all(paths.map(async (source) => ({ source, checkpoint: decodeCheckpoint(new Uint8Array(await readFile(source)), source) })));
      const composite = composeHeads(parts);
      await writeFileAtomic(flags.out, encodeCheckpoint(composite), { overwrite: Boolean(flags.force) });
      process.stderr.write(`wrote ${flags.out}: ${composite.tasks.map((t) => `${t.name} [${t.start}, ${t.start + t.labelNames.length})`).join(', ')}\n`);
    });

  cli
    .command('serve', 'Serve prompt files over HTTP: POST /predict batches requests of any of their tasks into one GPT-2 pass (docs/serving.md)')
    .option(...modelOption)
    .option('--prompt <file>', 'Trained prompt file (repeat for several; task names must be unique)')
    .option('--host <host>', `Address to listen on (default ${SERVE_DEFAULTS.host})`)
    .option('--port <n>', `Port (default ${SERVE_DEFAULTS.port}; 0: any free port)`)
    .option('--max-batch-rows <n>', `Texts one GPT-2 pass takes at most (default ${SERVE_DEFAULTS.maxBatchRows})`)
    .option('--max-batch-tokens <n>', `Padded tokens (texts × longest) one pass takes at most (default ${SERVE_DEFAULTS.maxBatchTokens})`)
    .option('--max-queued-rows <n>', `Texts that may wait; beyond, requests get 429 (default ${SERVE_DEFAULTS.maxQueuedRows})`)
    .option('--max-client-batch <n>', `Inputs one request may carry; beyond, 413 (default ${SERVE_DEFAULTS.maxClientBatch})`)
    .option('--payload-limit <bytes>', `Request body size; beyond, 413 (default ${SERVE_DEFAULTS.payloadLimit}, 2 MB)`)
    .option('--shutdown-timeout <seconds>', `On SIGTERM/SIGINT, time to answer accepted requests (default ${SERVE_DEFAULTS.shutdownTimeout})`)
    .option(...backendOption)
    .action((flags: ServeFlags) => serveCommand(verbatim(flags, argv)));

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

  cli
    .command('generate <text>', 'Continue a text with the tied LM head (a sanity check for real weights)')
    .option(...modelOption)
    .option('--tokens <n>', 'Tokens to generate', { default: 20 })
    .option('--temperature <t>', '0 for greedy, else sampled', { default: 0 })
    .option('--seed <n>', 'Sampling seed', { default: 0 })
    .option(...backendOption)
    .action((text: string, flags: Parameters<typeof generateCommand>[1]) => generateCommand(text, flags));

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
