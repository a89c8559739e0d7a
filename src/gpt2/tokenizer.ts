// GPT-2's byte-level BPE. The r50k_base rank table that js-tiktoken ships is GPT-2's
// vocabulary and merge order, bundled, so no network is needed.
import { Tiktoken } from 'js-tiktoken/lite';
import r50kBase from 'js-tiktoken/ranks/r50k_base';

export const GPT2_VOCAB_SIZE = 50257;
export const GPT2_EOS_ID = 50256;

// Building the rank table takes a noticeable moment; every tokenizer shares one.
let shared: Tiktoken | null = null;

export class GPT2Tokenizer {
  readonly eosId = GPT2_EOS_ID;
  readonly padId = GPT2_EOS_ID;
  readonly vocabSize = GPT2_VOCAB_SIZE;
  private readonly bpe: Tiktoken;

  constructor() {
    shared ??= new Tiktoken(r50kBase);
    this.bpe = shared;
  }

  /**
   * Token ids of `text`, keeping the first `maxLength` when given. Text that spells a special
   * token (such as "<|endoftext|>") is encoded as ordinary text: user data can never inject
   * the end-of-text id.
   */
  encode(text: string, maxLength?: number): number[] {
    if (maxLength !== undefined && (!Number.isInteger(maxLength) || maxLength < 0)) {
      throw new Error(`maxLength must be a non-negative integer, got ${maxLength}`);
    }
    const ids = this.bpe.encode(text, [], []);
    return maxLength === undefined ? ids : ids.slice(0, maxLength);
  }

  /** Text of `ids`; bytes that do not form valid UTF-8 (a cut multi-byte character) become U+FFFD. */
  decode(ids: readonly number[]): string {
    for (const id of ids) {
      if (!Number.isInteger(id) || id < 0 || id >= GPT2_VOCAB_SIZE) throw new Error(`token id ${id} is outside GPT-2's vocabulary (0..${GPT2_VOCAB_SIZE - 1})`);
    }
    return this.bpe.decode([...ids]);
  }
}
