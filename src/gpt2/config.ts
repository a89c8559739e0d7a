// GPT-2 hyperparameters, read from a Hugging Face config.json.

/** `gelu_new` is GPT-2's tanh approximation; `gelu` is the exact erf form. */
export type Activation = 'gelu_new' | 'gelu';

export interface GPT2Config {
  vocabSize: number;
  nPositions: number;
  nEmbd: number;
  nLayer: number;
  nHead: number;
  layerNormEps: number;
  activation: Activation;
}

// Hugging Face names for the same function; gelu_fast and gelu_pytorch_tanh are the tanh form.
const ACTIVATIONS: Readonly<Record<string, Activation>> = {
  gelu_new: 'gelu_new',
  gelu_pytorch_tanh: 'gelu_new',
  gelu_fast: 'gelu_new',
  gelu: 'gelu',
};

/**
 * Parses config.json text or its parsed object. Fields that change the architecture beyond
 * these hyperparameters (n_inner other than 4·n_embd, unscaled or layer-scaled attention)
 * are refused rather than silently ignored.
 */
export function parseConfig(json: string | object, name = 'config.json'): GPT2Config {
  let raw: unknown = json;
  if (typeof json === 'string') {
    try {
      raw = JSON.parse(json);
    } catch (e) {
      throw new Error(`${name}: not valid JSON (${(e as Error).message})`);
    }
  }
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) throw new Error(`${name}: not a JSON object`);
  const c = raw as Record<string, unknown>;

  const positiveInt = (field: string): number => {
    const v = c[field];
    if (v === undefined || v === null) throw new Error(`${name}: missing ${field}`);
    if (!Number.isSafeInteger(v) || (v as number) <= 0) throw new Error(`${name}: ${field} must be a positive integer, got ${JSON.stringify(v)}`);
    return v as number;
  };

  const positionsField = c.n_positions !== undefined && c.n_positions !== null ? 'n_positions' : 'n_ctx';
  const config: GPT2Config = {
    vocabSize: positiveInt('vocab_size'),
    nPositions: positiveInt(positionsField),
    nEmbd: positiveInt('n_embd'),
    nLayer: positiveInt('n_layer'),
    nHead: positiveInt('n_head'),
    layerNormEps: 1e-5,
    activation: 'gelu_new',
  };
  if (config.nEmbd % config.nHead !== 0) {
    throw new Error(`${name}: n_embd ${config.nEmbd} is not divisible by n_head ${config.nHead}`);
  }
  const eps = c.layer_norm_epsilon;
  if (eps !== undefined) {
    if (typeof eps !== 'number' || !(eps > 0) || !Number.isFinite(eps)) {
      throw new Error(`${name}: layer_norm_epsilon must be a positive number, got ${JSON.stringify(eps)}`);
    }
    config.layerNormEps = eps;
  }
  const act = c.activation_function;
  if (act !== undefined) {
    const mapped = typeof act === 'string' ? ACTIVATIONS[act] : undefined;
    if (!mapped) {
      throw new Error(`${name}: activation_function ${JSON.stringify(act)} is not supported (supported: ${Object.keys(ACTIVATIONS).join(', ')})`);
    }
    config.activation = mapped;
  }
  if (c.n_inner !== undefined && c.n_inner !== null && c.n_inner !== 4 * config.nEmbd) {
    throw new Error(`${name}: n_inner ${JSON.stringify(c.n_inner)} is not supported (only 4 * n_embd = ${4 * config.nEmbd})`);
  }
  if (c.scale_attn_weights === false) throw new Error(`${name}: scale_attn_weights false is not supported`);
  if (c.scale_attn_by_inverse_layer_idx === true) throw new Error(`${name}: scale_attn_by_inverse_layer_idx true is not supported`);
  return config;
}

/** The Hugging Face config.json object of a config (GPT2LMHeadModel, readable by parseConfig and by transformers). */
export function hfConfig(config: GPT2Config): Record<string, unknown> {
  return {
    model_type: 'gpt2',
    architectures: ['GPT2LMHeadModel'],
    vocab_size: config.vocabSize,
    n_positions: config.nPositions,
    n_ctx: config.nPositions,
    n_embd: config.nEmbd,
    n_layer: config.nLayer,
    n_head: config.nHead,
    n_inner: null,
    activation_function: config.activation,
    layer_norm_epsilon: config.layerNormEps,
    bos_token_id: 50256,
    eos_token_id: 50256,
  };
}

/** config.json's text for a config: hfConfig, as transformers writes it (indented, a final newline). */
export function hfConfigText(config: GPT2Config): string {
  return `${JSON.stringify(hfConfig(config), null, 2)}\n`;
}
