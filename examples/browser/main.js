// The browser example: the package's default model and task (the same library calls the
// `gpt2-prompt train` CLI makes without flags), trained here on WebGPU. Served from the
// package root, e.g. `npx http-server .` then /examples/browser/ (WebGPU needs localhost or https).
// URL parameters, for quick runs: ?epochs=N, ?train=N and ?val=N (the first N examples),
// ?steps=N (stop after N steps), ?autostart.
import {
  openWebGpu, GPT2, GPT2Tokenizer, loadCheckpoint, fingerprint, fit, classify, formatEvaluation,
  defaultTask, DEFAULT_MODEL_DIR, DEFAULT_TRAINING,
} from '../../dist/browser/gpt2-prompt.js';
import { traceDownload } from './trace-download.js';

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);
const packageRoot = new URL('../../', import.meta.url);

/** Files shipped with the package, by their path relative to its root. */
async function readShipped(path) {
  const response = await fetch(new URL(path, packageRoot));
  if (!response.ok) throw new Error(`${path}: HTTP ${response.status}`);
  return new Uint8Array(await response.arrayBuffer());
}

/** The first n rows of a dataset (all of it without n). */
function firstRows(data, n) {
  if (n === null) return data;
  const k = Number(n);
  const width = data.labelNames.length;
  return { ...data, texts: data.texts.slice(0, k), labels: data.labels.slice(0, data.kind === 'single' ? k : 0), targets: data.targets.slice(0, data.kind === 'multi' ? k * width : 0) };
}

// What tests and curious users can read from the console.
const demo = (window.demo = { state: 'loading', losses: [], evaluations: [], error: null });

function fail(error) {
  demo.state = 'failed';
  demo.error = String(error?.message ?? error);
  $('status').textContent = `Error: ${demo.error}`;
  $('status').className = 'error';
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

async function main() {
  if (!navigator.gpu) throw new Error('this browser offers no WebGPU (navigator.gpu is undefined)');
  const gpu = await openWebGpu({ host: 'browser' });
  const [configBytes, weights] = await Promise.all([readShipped(`${DEFAULT_MODEL_DIR}/config.json`), readShipped(`${DEFAULT_MODEL_DIR}/model.safetensors`)]);
  const checkpoint = loadCheckpoint(new TextDecoder().decode(configBytes), weights, `${DEFAULT_MODEL_DIR}/model.safetensors`);
  const identity = { config: checkpoint.config, fingerprint: await fingerprint(checkpoint) };
  const model = new GPT2(gpu, checkpoint.config, checkpoint.tensors);
  const tokenizer = new GPT2Tokenizer();
  const task = await defaultTask(DEFAULT_TRAINING.seed, readShipped);
  const trainSet = firstRows(task.train, params.get('train'));
  const valSet = firstRows(task.val, params.get('val'));
  const epochs = Number(params.get('epochs') ?? task.epochs);
  const c = checkpoint.config;
  $('status').textContent = `${DEFAULT_MODEL_DIR} (${c.nLayer} layers × ${c.nEmbd}, ${c.nPositions} positions) on ${gpu.adapterName}. Task: ${task.description}; ${epochs} epochs${trainSet === task.train ? '' : ` on the first ${trainSet.texts.length} examples`}.`;
  demo.adapter = gpu.adapterName;
  demo.state = 'ready';

  let classifier = null;
  let maxLength = 0;
  const classifyText = async () => {
    const text = $('text').value;
    const { rows } = await classify(model, tokenizer, [classifier], [text], { maxLength });
    const row = rows[0];
    $('prediction').textContent = Object.entries(row).map(([k, v]) => `${k}: ${v}`).join('\n');
    demo.prediction = row;
    return row;
  };
  demo.classify = async (text) => {
    $('text').value = text;
    return classifyText();
  };

  const train = async () => {
    $('train').disabled = true;
    demo.state = 'training';
    const started = performance.now();
    const stopAfter = params.has('steps') ? Number(params.get('steps')) : Infinity;
    const stop = new AbortController();
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
    try {
      const result = await fit(model, tokenizer, [{ name: task.name, train: trainSet, val: valSet, data: 'demo' }], {
        identity,
        epochs,
        batchSize: DEFAULT_TRAINING.batchSize,
        lr: DEFAULT_TRAINING.lr,
        seed: DEFAULT_TRAINING.seed,
        promptTokens: DEFAULT_TRAINING.promptTokens,
        signal: stop.signal,
        aroundStep: traceDownload(gpu, $('trace')),
        onStart: ({ stepsPerEpoch }) => {
          total = stepsPerEpoch * epochs;
          $('progress').max = total;
        },
        onStep: ({ epoch, step, steps, loss }) => {
          demo.losses.push(loss);
          const done = demo.losses.length;
          $('progress').value = done;
          const rate = done / ((performance.now() - started) / 1000);
          $('step').textContent = `epoch ${epoch + 1}/${epochs} · step ${step + 1}/${steps} · loss ${loss.toFixed(4)} · ${rate.toFixed(1)} steps/s`;
          redraw();
          if (done >= stopAfter) stop.abort(new Error(`stopped after ${done} steps (?steps=${stopAfter})`));
        },
        onValidation: (evaluations, epoch) => {
          demo.evaluations.push(evaluations);
          $('report').textContent = `after epoch ${epoch + 1}\n` + evaluations.map(formatEvaluation).join('\n\n');
        },
      });
      classifier = result.classifier;
      maxLength = result.maxLength;
      demo.seconds = (performance.now() - started) / 1000;
      $('step').textContent += ` · done in ${demo.seconds.toFixed(0)} s`;
      $('classify').disabled = false;
      await classifyText();
      demo.state = 'trained';
    } catch (error) {
      if (!stop.signal.aborted) throw error;
      demo.state = 'stopped';
      $('step').textContent += ` · ${stop.signal.reason.message}`;
    }
  };
  $('train').onclick = () => train().catch(fail);
  $('classify').onclick = () => classifyText().catch(fail);
  $('train').disabled = false;
  if (params.has('autostart')) $('train').click();
}

main().catch(fail);
