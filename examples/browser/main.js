// The browser page: pick the shipped small model or a GPT-2 from the Hugging Face Hub (kept in
// Cache Storage for the next visit), bring a CSV/TSV/JSONL/Parquet file (read by the CLI's own
// readers), train a soft prompt on WebGPU with the CLI's options, and take away a .gpt2p prompt
// file that `gpt2-prompt predict` and `serve` use. `npx gpt2-prompt page` serves it.
// URL parameters, for links and tests: ?model=<hub id> (open it from the Hub), ?hub=<base URL>;
// with the demo task: ?epochs=N, ?train=N and ?val=N (the first N examples), ?steps=N (stop after
// N steps), ?autostart.
import {
  openWebGpu, GPT2, GPT2Tokenizer, loadCheckpoint, fingerprint, fit, classify, formatEvaluation, defaultTask,
  DEFAULT_MODEL_DIR, DEFAULT_TRAINING, parseTable, toDataset, holdOut, classCounts, parseLabelList, posWeights,
  encodeCheckpoint, decodeCheckpoint, checkSameModel, textLength, PromptClassifier, predictionsCsv,
  openHubModel, modelNeeds, whyNotFitting, cacheStorageStore, parseHubFileUrl, HUB_URL, DEFAULT_REPO,
} from '../../dist/browser/gpt2-prompt.js';
import { traceDownload } from './trace-download.js';

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);
const packageRoot = new URL('../../', import.meta.url);
/** Files larger than this are refused before they are read: the page holds a file, its table and its dataset at once. */
const MAX_FILE_BYTES = 512 * 2 ** 20;

const NO_WEBGPU =
  'This browser offers no WebGPU, which the page needs to run GPT-2. It works in Chrome and Edge 113 or later ' +
  '(on Linux start Chrome with --enable-unsafe-webgpu --enable-features=Vulkan, or turn on chrome://flags/#enable-unsafe-webgpu), ' +
  'in Safari 26 (older versions: Develop › Feature Flags › WebGPU), and in Firefox 141 or later on Windows ' +
  '(elsewhere Firefox Nightly with dom.webgpu.enabled in about:config). The page must come from https or localhost.';

// What tests and curious users can read from the console.
const demo = (window.demo = { state: 'loading', model: null, losses: [], evaluations: [], error: null, dataError: null, modelError: null, classifyError: null });

const mib = (bytes) => `${(bytes / 2 ** 20).toFixed(bytes < 10 * 2 ** 20 ? 1 : 0)} MiB`;
const duration = (s) => (s >= 3600 ? `${Math.floor(s / 3600)} h ${Math.round((s % 3600) / 60)} min` : s >= 60 ? `${Math.floor(s / 60)} min ${Math.round(s % 60)} s` : `${Math.round(s)} s`);
const messageOf = (error) => String(error?.message ?? error);

function say(id, text, isError = false) {
  $(id).textContent = text;
  $(id).classList.toggle('error', isError);
}

function fail(error) {
  demo.state = 'failed';
  demo.error = messageOf(error);
  say('status', `Error: ${demo.error}`, true);
}

/** Offers bytes as a file download. */
function saveFile(bytes, name, type) {
  const url = URL.createObjectURL(new Blob([bytes], { type }));
  const a = Object.assign(document.createElement('a'), { href: url, download: name });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

async function readShipped(path) {
  const response = await fetch(new URL(path, packageRoot));
  if (!response.ok) throw new Error(`${path}: HTTP ${response.status}`);
  return new Uint8Array(await response.arrayBuffer());
}

/** A file the visitor chose, as bytes, refused when over what the page can hold. */
async function readChosen(file) {
  if (file.size > MAX_FILE_BYTES) throw new Error(`${file.name} is ${mib(file.size)}, over the ${mib(MAX_FILE_BYTES)} this page reads; use a part of it, or the gpt2-prompt CLI`);
  return new Uint8Array(await file.arrayBuffer());
}

function drawLosses(canvas, losses, total) {
  const g = canvas.getContext('2d');
  const { width: w, height: h } = canvas;
  const pad = 34;
  g.clearRect(0, 0, w, h);
  g.font = '11px system-ui';
  g.fillStyle = '#666';
  g.strokeStyle = '#ddd';
  const top = Math.max(1, ...losses) * 1.05;
  for (let i = 0; i <= 4; i++) {
    const y = pad / 2 + ((h - pad) * i) / 4;
    g.beginPath();
    g.moveTo(pad, y);
    g.lineTo(w - 8, y);
    g.stroke();
    g.fillText((top * (1 - i / 4)).toFixed(2), 2, y + 4);
  }
  g.fillText(`step (of ${total})`, w - 90, h - 4);
  if (losses.length === 0) return;
  const x = (i) => pad + ((w - pad - 8) * i) / Math.max(1, total - 1);
  const y = (v) => pad / 2 + (h - pad) * (1 - v / top);
  const line = (values, colour, width) => {
    g.strokeStyle = colour;
    g.lineWidth = width;
    g.beginPath();
    values.forEach((v, i) => (i ? g.lineTo(x(i), y(v)) : g.moveTo(x(i), y(v))));
    g.stroke();
    g.lineWidth = 1;
  };
  line(losses, '#9bc', 1);
  // An exponential moving average shows the trend through the noise of single batches.
  let ema = losses[0];
  line(losses.map((l) => (ema = 0.95 * ema + 0.05 * l)), '#147', 2);
}

// ---------------------------------------------------------------- the model

const session = { gpu: null, model: null, identity: null, name: '', tokenizer: new GPT2Tokenizer() };
const store = globalThis.caches ? cacheStorageStore(globalThis.caches) : null;
/** Unfinished downloads, so opening the same model again resumes them. */
const downloads = new Map();
let cancelDownload = null;

function trainingShape() {
  const promptTokens = Number($('prompt-tokens').value) || DEFAULT_TRAINING.promptTokens;
  return { batchSize: Number($('batch-size').value) || DEFAULT_TRAINING.batchSize, promptTokens, maxLength: Number($('max-length').value) || 0 };
}

/** Says what the model needs, and refuses it when this adapter or the storage cannot hold it. */
async function checkModel(repo, config, storageBytes) {
  const shape = trainingShape();
  const tokens = Math.min(config.nPositions, shape.maxLength ? shape.maxLength + shape.promptTokens : config.nPositions);
  const needs = modelNeeds(config, storageBytes, { batchSize: shape.batchSize, tokens });
  const estimate = await navigator.storage?.estimate?.().catch(() => null);
  const free = estimate?.quota !== undefined ? estimate.quota - (estimate.usage ?? 0) : undefined;
  demo.needs = needs;
  say(
    'model-needs',
    `${repo}: ${(needs.parameters / 1e6).toFixed(1)}M parameters, ${config.nLayer} layer${config.nLayer === 1 ? '' : 's'} × ${config.nEmbd}, ${config.nPositions} positions. ` +
      `Needs ${mib(storageBytes)} of storage${free !== undefined ? ` (${mib(free)} free)` : ''} and about ${mib(needs.weightBytes)} of GPU memory for the weights ` +
      `plus about ${mib(needs.batchBytes)} per training batch of ${shape.batchSize} × ${tokens} tokens; its largest buffer, ${needs.largestBuffer.what}, takes ${mib(needs.largestBuffer.bytes)}.`,
  );
  const reason = whyNotFitting(needs, session.gpu.limits, free);
  if (reason) throw new Error(`${repo} cannot run here: ${reason}`);
}

function showDownload(progress) {
  const { received, total, rate, secondsLeft } = progress;
  $('download-progress').hidden = false;
  $('download-progress').max = total ?? 1;
  $('download-progress').value = total ? received : 0;
  $('download-status').textContent =
    `model.safetensors: ${mib(received)}${total ? ` of ${mib(total)}` : ''}` + (rate > 0 ? ` · ${mib(rate)}/s` : '') + (secondsLeft !== undefined ? ` · ${duration(secondsLeft)} left` : '');
}

async function openModel() {
  const source = document.querySelector('input[name=source]:checked').value;
  demo.modelState = 'loading';
  demo.modelError = null;
  say('model-needs', '');
  $('open-model').disabled = true;
  $('train').disabled = true;
  let checkpoint;
  let origin;
  try {
    if (source === 'shipped') {
      const [configBytes, weights] = await Promise.all([readShipped(`${DEFAULT_MODEL_DIR}/config.json`), readShipped(`${DEFAULT_MODEL_DIR}/model.safetensors`)]);
      checkpoint = loadCheckpoint(new TextDecoder().decode(configBytes), weights, `${DEFAULT_MODEL_DIR}/model.safetensors`);
      await checkModel(DEFAULT_MODEL_DIR, checkpoint.config, weights.byteLength);
      origin = 'shipped with the package';
    } else {
      const repo = $('repo').value.trim();
      const base = $('hub-base').value.trim() || HUB_URL;
      const stop = new AbortController();
      cancelDownload = () => stop.abort(new Error('download cancelled; Open model resumes it'));
      $('cancel-download').hidden = false;
      say('model-status', `${repo}: looking in this browser's storage, then at ${base}…`);
      const opened = await openHubModel({ base, repo, store, downloads, signal: stop.signal, check: (config, size) => checkModel(repo, config, size), onProgress: (_, p) => showDownload(p) });
      checkpoint = opened.checkpoint;
      origin = opened.fromStore ? "from this browser's storage" : `downloaded from ${base}${opened.resumed ? ' (resumed)' : ''}, now stored in this browser`;
      demo.model = { repo, base, fromStore: opened.fromStore, resumed: opened.resumed };
    }
  } catch (error) {
    demo.modelState = 'failed';
    demo.modelError = messageOf(error);
    say('model-status', demo.modelError, true);
    // The model open before, if any, still trains.
    $('train').disabled = !session.model;
    return;
  } finally {
    cancelDownload = null;
    $('cancel-download').hidden = true;
    $('open-model').disabled = false;
    listStored().catch(() => {});
  }
  session.model?.dispose();
  releaseClassifier();
  session.model = new GPT2(session.gpu, checkpoint.config, checkpoint.tensors);
  session.identity = { config: checkpoint.config, fingerprint: await fingerprint(checkpoint) };
  session.name = source === 'shipped' ? DEFAULT_MODEL_DIR : $('repo').value.trim();
  const c = checkpoint.config;
  say('model-status', `${session.name} (${c.nLayer} layers × ${c.nEmbd}, ${c.nPositions} positions, fingerprint ${session.identity.fingerprint}), ${origin}; on ${session.gpu.adapterName}.`);
  demo.model = { ...demo.model, name: session.name, fingerprint: session.identity.fingerprint };
  demo.modelState = 'ready';
  demo.state = 'ready';
  $('train').disabled = false;
  $('classify').disabled = !active;
}

/** The stored Hub models, each with its size and a Delete button. */
async function listStored() {
  if (!store) return;
  const models = new Map();
  for (const { url, bytes } of await store.list()) {
    const at = parseHubFileUrl(url);
    const key = at ? `${at.repo} from ${at.base}` : url;
    const entry = models.get(key) ?? { urls: [], bytes: 0 };
    entry.urls.push(url);
    entry.bytes += bytes;
    models.set(key, entry);
  }
  demo.stored = [...models.keys()];
  const list = $('stored');
  list.replaceChildren();
  if (models.size === 0) list.append(Object.assign(document.createElement('li'), { textContent: '(none)' }));
  for (const [key, { urls, bytes }] of models) {
    const item = Object.assign(document.createElement('li'), { textContent: `${key}: ${mib(bytes)} ` });
    const remove = Object.assign(document.createElement('button'), { textContent: 'Delete' });
    remove.onclick = async () => {
      await Promise.all(urls.map((u) => store.delete(u)));
      await listStored();
    };
    item.append(remove);
    list.append(item);
  }
}

// ---------------------------------------------------------------- the data

const data = { table: null, name: '', valTable: null, valName: '', train: null, val: null, demo: null };

function fillSelect(select, columns, preferred) {
  select.replaceChildren(...columns.map((c) => Object.assign(document.createElement('option'), { value: c, textContent: c })));
  const pick = preferred.find((p) => columns.includes(p));
  if (pick !== undefined) select.value = pick;
}

function showColumns(table) {
  for (const id of ['columns', 'label-order', 'validation']) $(id).hidden = false;
  fillSelect($('text-column'), table.columns, ['text', 'sentence', 'review', table.columns[0]]);
  fillSelect($('label-column'), table.columns, ['label', 'labels', 'class', table.columns[1], table.columns[0]]);
  $('label-columns').replaceChildren(
    ...table.columns.map((c) => {
      const label = document.createElement('label');
      const box = Object.assign(document.createElement('input'), { type: 'checkbox', value: c });
      box.onchange = () => prepareData();
      label.append(box, ` ${c} `);
      return label;
    }),
  );
}

/** The dataset spec the controls describe. */
function chosenSpec() {
  const spec = { textColumn: $('text-column').value };
  if (document.querySelector('input[name=kind]:checked').value === 'single') {
    spec.labelColumn = $('label-column').value;
    if ($('labels').value.trim()) spec.labels = parseLabelList($('labels').value);
  } else {
    spec.labelColumns = [...$('label-columns').querySelectorAll('input:checked')].map((b) => b.value);
  }
  return spec;
}

/** Builds the training and validation sets from the controls; shows the counts, or the one-line error. */
async function prepareData() {
  data.train = data.val = null;
  say('data-error', '');
  demo.dataError = null;
  $('class-counts').replaceChildren();
  if (!data.table) {
    say('data-status', data.demo ? `No file chosen: ${data.demo.description}.` : '');
    return;
  }
  try {
    const spec = chosenSpec();
    const all = toDataset(data.table, spec, data.name);
    const mode = document.querySelector('input[name=val]:checked').value;
    if (mode === 'split') {
      ({ train: data.train, val: data.val } = holdOut(all, Number($('val-share').value) / 100, Number($('split-seed').value)));
    } else {
      data.train = all;
      if (mode === 'file') {
        if (!data.valTable) throw new Error('choose the validation file, or another way to validate');
        // Validation labels use the training label order.
        data.val = toDataset(data.valTable, { ...spec, ...(all.kind === 'single' ? { labels: all.labelNames } : {}) }, data.valName);
      }
    }
    const counts = classCounts(data.train);
    const valCounts = data.val ? classCounts(data.val) : null;
    const row = (cells, tag = 'td') => {
      const tr = document.createElement('tr');
      tr.append(...cells.map((c) => Object.assign(document.createElement(tag), { textContent: String(c) })));
      return tr;
    };
    $('class-counts').append(
      row([all.kind === 'single' ? 'class' : 'label (rows with 1)', 'training', ...(valCounts ? ['validation'] : [])], 'th'),
      ...counts.map((c, k) => row([c.label, c.count, ...(valCounts ? [valCounts[k].count] : [])])),
    );
    say('data-status', `${data.name}: ${all.kind === 'single' ? `single-label, ${all.labelNames.length} classes` : `multi-label, ${all.labelNames.length} labels`}; ${data.train.texts.length} rows to train on, ${data.val ? `${data.val.texts.length} to validate on` : 'no validation'}.`);
    demo.data = { kind: all.kind, labels: all.labelNames, train: data.train.texts.length, val: data.val?.texts.length ?? 0, counts };
  } catch (error) {
    data.train = data.val = null;
    demo.dataError = messageOf(error);
    say('data-error', demo.dataError, true);
    say('data-status', '');
  }
}

async function chooseDataFile(file) {
  data.table = null;
  try {
    data.name = file.name;
    data.table = await parseTable(await readChosen(file), file.name);
    $('task-name').value = file.name.replace(/(\.gz)?\.[^.]+$/, '').replace(/[^\w.-]+/g, '-') || 'task';
    showColumns(data.table);
  } catch (error) {
    demo.dataError = messageOf(error);
    say('data-error', demo.dataError, true);
    return;
  }
  await prepareData();
}

async function chooseValFile(file) {
  try {
    data.valName = file.name;
    data.valTable = await parseTable(await readChosen(file), file.name);
    document.querySelector('input[name=val][value=file]').checked = true;
  } catch (error) {
    data.valTable = null;
    demo.dataError = messageOf(error);
    say('data-error', demo.dataError, true);
    return;
  }
  await prepareData();
}

// ---------------------------------------------------------------- training

/** The classifier that classifies: the one just trained, or one from a loaded prompt file. */
let active = null;
let last = null;
let best = null;
let stopTraining = null;

function releaseClassifier() {
  active?.classifier.dispose();
  active = null;
  $('classify').disabled = true;
}

function positive(id, what, integer = true) {
  const v = Number($(id).value);
  if (!(v > 0) || (integer && !Number.isInteger(v))) throw new Error(`${what} must be a positive ${integer ? 'whole number' : 'number'}, got '${$(id).value}'`);
  return v;
}

async function train() {
  const demoTask = !data.table;
  if (!demoTask && !data.train) throw new Error(demo.dataError ?? 'choose a data file first');
  const epochs = positive('epochs', 'Epochs');
  const batchSize = positive('batch-size', 'Batch size');
  const promptTokens = positive('prompt-tokens', 'Prompt length');
  const lr = positive('lr', 'Learning rate', false);
  const seed = Number($('seed').value);
  if (!Number.isInteger(seed)) throw new Error(`Seed must be a whole number, got '${$('seed').value}'`);
  const nPositions = session.model.config.nPositions;
  const maxLength = $('max-length').value ? positive('max-length', 'Max length') : nPositions - promptTokens;
  if (maxLength + promptTokens > nPositions) throw new Error(`max length ${maxLength} plus ${promptTokens} prompt tokens exceeds the model's ${nPositions} positions`);
  const task = demoTask
    ? { name: data.demo.name, train: firstRows(data.demo.train, params.get('train')), val: firstRows(data.demo.val, params.get('val')), data: 'demo' }
    : { name: $('task-name').value.trim() || 'task', train: data.train, val: data.val, data: data.name };
  // The CLI's default loss settings: no class weights; pos_weight 'auto' for multi-label.
  if (task.train.kind === 'multi') task.loss = { posWeight: posWeights(task.train.targets, task.train.labelNames.length) };

  releaseClassifier();
  last = best = null;
  for (const id of ['train', 'download-prompt', 'download-best', 'open-model']) $(id).disabled = true;
  $('stop').disabled = false;
  demo.state = 'training';
  demo.losses = [];
  demo.evaluations = [];
  $('report').textContent = task.val ? '(after the first epoch)' : '(no validation data)';
  const started = performance.now();
  const stopAfter = params.has('steps') ? Number(params.get('steps')) : Infinity;
  const stop = new AbortController();
  stopTraining = () => stop.abort(new Error('stopped'));
  let total = 1;
  let pending = false;
  const redraw = () => {
    if (pending) return;
    pending = true;
    requestAnimationFrame(() => {
      pending = false;
      drawLosses($('loss'), demo.losses, total);
    });
  };
  let meanLoss = Infinity;
  try {
    const result = await fit(session.model, session.tokenizer, [task], {
      identity: session.identity,
      epochs,
      batchSize,
      lr,
      seed,
      promptTokens,
      maxLength,
      signal: stop.signal,
      aroundStep: traceDownload(session.gpu, $('trace')),
      onStart: ({ stepsPerEpoch }) => {
        total = stepsPerEpoch * epochs;
        $('progress').max = total;
        redraw();
      },
      onStep: ({ epoch, step, steps, loss }) => {
        demo.losses.push(loss);
        const done = demo.losses.length;
        $('progress').value = done;
        const seconds = (performance.now() - started) / 1000;
        const left = (seconds / done) * (total - done);
        $('step').textContent = `epoch ${epoch + 1}/${epochs} · batch ${step + 1}/${steps} · loss ${loss.toFixed(4)} · ${(done / seconds).toFixed(1)} batches/s · ${duration(left)} left`;
        redraw();
        if (done >= stopAfter) stop.abort(new Error(`stopped after ${done} steps (?steps=${stopAfter})`));
      },
      onCheckpoint: (checkpoint, info) => {
        last = { bytes: encodeCheckpoint(checkpoint), epoch: info.epoch };
        meanLoss = info.meanLoss;
        $('download-prompt').disabled = false;
        // Without validation data, the best epoch is the one of lowest training loss.
        if (!task.val && (!best || -meanLoss > best.score)) keepBest(last, -meanLoss, `training loss ${meanLoss.toFixed(4)}`);
      },
      onValidation: (evaluations, epoch) => {
        demo.evaluations.push(evaluations);
        $('report').textContent = `after epoch ${epoch + 1}\n` + evaluations.map(formatEvaluation).join('\n\n');
        const macroF1 = evaluations[0].report.averages.find((a) => a.name === 'macro avg').f1;
        if (!best || macroF1 > best.score) keepBest(last, macroF1, `validation macro F1 ${macroF1.toFixed(4)}`);
      },
    });
    active = { classifier: result.classifier, maxLength: result.maxLength, source: `the prompt just trained (${task.name})` };
    demo.seconds = (performance.now() - started) / 1000;
    $('step').textContent += ` · done in ${duration(demo.seconds)} (mean loss of the last epoch ${meanLoss.toFixed(4)})`;
    say('prompt-status', `classifying with ${active.source}`);
    $('classify').disabled = false;
    await classifyTyped();
    demo.state = 'trained';
  } catch (error) {
    if (!stop.signal.aborted) throw error;
    demo.state = 'stopped';
    $('step').textContent += ` · ${stop.signal.reason.message}`;
  } finally {
    stopTraining = null;
    $('stop').disabled = true;
    $('train').disabled = false;
    $('open-model').disabled = false;
  }
}

function keepBest(checkpoint, score, why) {
  best = { ...checkpoint, score };
  $('download-best').disabled = false;
  say('best-status', `best so far: epoch ${checkpoint.epoch + 1} (${why})`);
}

/** The first n rows of a dataset (all of it without n): the demo's quick runs. */
function firstRows(dataset, n) {
  if (n === null) return dataset;
  const k = Number(n);
  const width = dataset.labelNames.length;
  return { ...dataset, texts: dataset.texts.slice(0, k), labels: dataset.labels.slice(0, dataset.kind === 'single' ? k : 0), targets: dataset.targets.slice(0, dataset.kind === 'multi' ? k * width : 0) };
}

// ---------------------------------------------------------------- classifying

let predictions = null;

async function runClassifier(texts) {
  const result = await classify(session.model, session.tokenizer, [active.classifier], texts, {
    maxLength: active.maxLength,
    onBatch: (done) => say('classify-error', `classified ${done} of ${texts.length}`),
  });
  say('classify-error', '');
  predictions = { texts, ...result };
  demo.predictions = predictions;
  $('download-predictions').disabled = false;
  const shown = result.rows.slice(0, 20).map((row, n) => `${texts[n].slice(0, 60)}\n  ${Object.entries(row).map(([k, v]) => `${k}: ${v}`).join('  ')}`);
  $('prediction').textContent = shown.join('\n') + (texts.length > 20 ? `\n… ${texts.length - 20} more in the CSV` : '');
  return result.rows;
}

demo.classify = async (text) => {
  $('text').value = text;
  return (await classifyTyped())[0];
};

async function classifyTyped() {
  const texts = $('text').value.split('\n').filter((t) => t.trim() !== '');
  if (texts.length === 0) throw new Error('type a text to classify');
  return runClassifier(texts);
}

async function classifyFile(file) {
  const table = await parseTable(await readChosen(file), file.name);
  const column = $('classify-column').value;
  if (!table.columns.includes(column)) throw new Error(`${file.name}: no column "${column}" (columns: ${table.columns.join(', ')})`);
  const texts = table.rows.map((row, i) => {
    const v = row[column];
    if (typeof v !== 'string') throw new Error(`${file.name}: row ${i + 1}, column "${column}": expected text, got ${v === null || v === undefined ? 'nothing' : typeof v}`);
    return v;
  });
  await runClassifier(texts);
}

/** A prompt file the visitor brings, refused (with the reason) when made for another model. */
async function loadPromptFile(file) {
  if (!session.model) throw new Error('open a model first: a prompt file runs on the model it was trained on');
  const checkpoint = decodeCheckpoint(new Uint8Array(await file.arrayBuffer()), file.name);
  checkSameModel(checkpoint, session.identity, file.name);
  releaseClassifier();
  active = { classifier: new PromptClassifier(session.model, checkpoint.params, checkpoint.tasks), maxLength: textLength(session.model.config, checkpoint), source: file.name };
  say('prompt-status', `classifying with ${file.name} (${checkpoint.tasks.map((t) => `${t.name}: ${t.labelNames.join(', ')}`).join('; ')})`);
  $('classify').disabled = false;
}

// ---------------------------------------------------------------- wiring

/** Runs an action of a control, its error shown in the given line (one sentence, no stack). */
const guarded = (lineId, action) => async (...args) => {
  try {
    say(lineId, '');
    demo.classifyError = null;
    await action(...args);
  } catch (error) {
    if (lineId === 'classify-error') demo.classifyError = messageOf(error);
    say(lineId, messageOf(error), true);
  }
};

function wire() {
  $('open-model').onclick = () => openModel().catch(fail);
  $('cancel-download').onclick = () => cancelDownload?.();
  $('repo').oninput = $('hub-base').oninput = () => (document.querySelector('input[name=source][value=hub]').checked = true);
  $('data-file').onchange = () => $('data-file').files[0] && chooseDataFile($('data-file').files[0]);
  $('val-file').onchange = () => $('val-file').files[0] && chooseValFile($('val-file').files[0]);
  for (const id of ['text-column', 'label-column', 'labels', 'val-share', 'split-seed']) $(id).onchange = () => prepareData();
  for (const input of document.querySelectorAll('input[name=kind], input[name=val]')) input.onchange = () => prepareData();
  const drop = $('drop');
  drop.ondragover = (e) => {
    e.preventDefault();
    drop.classList.add('over');
  };
  drop.ondragleave = () => drop.classList.remove('over');
  drop.ondrop = (e) => {
    e.preventDefault();
    drop.classList.remove('over');
    const file = e.dataTransfer.files[0];
    if (file) chooseDataFile(file);
  };
  $('train').onclick = () => train().catch((error) => (demo.state === 'training' ? fail(error) : say('step', messageOf(error), true)));
  $('stop').onclick = () => stopTraining?.();
  $('download-prompt').onclick = () => saveFile(last.bytes, `${$('task-name').value || 'prompt'}.gpt2p`, 'application/octet-stream');
  $('download-best').onclick = () => saveFile(best.bytes, `${$('task-name').value || 'prompt'}.best.gpt2p`, 'application/octet-stream');
  $('classify').onclick = guarded('classify-error', classifyTyped);
  $('classify-file').onchange = guarded('classify-error', () => classifyFile($('classify-file').files[0]));
  $('prompt-file').onchange = guarded('classify-error', () => loadPromptFile($('prompt-file').files[0]));
  $('download-predictions').onclick = () => saveFile(predictionsCsv(predictions.texts, predictions), 'predictions.csv', 'text/csv');
}

async function main() {
  if (!navigator.gpu) throw new Error(NO_WEBGPU);
  try {
    session.gpu = await openWebGpu({ host: 'browser' });
  } catch (error) {
    throw new Error(`${NO_WEBGPU} (${messageOf(error)})`);
  }
  demo.adapter = session.gpu.adapterName;
  data.demo = await defaultTask(DEFAULT_TRAINING.seed, readShipped);
  $('epochs').value = params.get('epochs') ?? data.demo.epochs;
  $('prompt-tokens').value = DEFAULT_TRAINING.promptTokens;
  $('batch-size').value = DEFAULT_TRAINING.batchSize;
  $('lr').value = DEFAULT_TRAINING.lr;
  $('seed').value = DEFAULT_TRAINING.seed;
  if (params.has('hub')) $('hub-base').value = params.get('hub');
  $('repo').value = params.get('model') ?? DEFAULT_REPO;
  if (params.has('model')) document.querySelector('input[name=source][value=hub]').checked = true;
  wire();
  say('status', `WebGPU on ${session.gpu.adapterName}. Open a model, bring a file (or train the demo task), train, and download the prompt file for gpt2-prompt predict and serve.`);
  await prepareData();
  await listStored().catch(() => {});
  await openModel();
  if (params.has('autostart') && demo.modelState === 'ready') $('train').click();
}

main().catch(fail);
