import { describe, expect, it } from 'vitest';
import { GPT2Tokenizer } from '../../src/gpt2/tokenizer.ts';

const tok = new GPT2Tokenizer();

describe('GPT-2 tokenizer', () => {
  it('matches known GPT-2 encodings', () => {
    expect(tok.encode('Hello world')).toEqual([15496, 995]);
    expect(tok.encode(' the')).toEqual([262]);
    expect(tok.encode('')).toEqual([]);
    // Contractions and digit runs split as in GPT-2's pre-tokenizer; "!" is byte 0x21 = id 0.
    expect(tok.encode("I'm 2024!")).toEqual([40, 1101, 48609, 0]);
    expect(tok.eosId).toBe(50256);
    expect(tok.padId).toBe(50256);
  });

  it('encodes special-token text in user data as plain text, never as the end-of-text id', () => {
    const ids = tok.encode('a<|endoftext|>b');
    expect(ids).not.toContain(50256);
    expect(ids.length).toBeGreaterThan(3);
    expect(tok.decode(ids)).toBe('a<|endoftext|>b');
    expect(tok.encode('<|endoftext|>')).toEqual([27, 91, 437, 1659, 5239, 91, 29]);
  });

  it('round-trips unicode, emoji, whitespace runs and control characters', () => {
    for (const text of ['héllo wörld', '日本語のテキスト', 'emoji 🎉👩‍👩‍👧 flags 🇫🇷', '  two  spaces\n\n\ttab', 'zero\u200bwidth', '\u0000\u0001']) {
      const ids = tok.encode(text);
      expect(ids.every((id) => Number.isInteger(id) && id >= 0 && id < 50256)).toBe(true);
      expect(tok.decode(ids)).toBe(text);
    }
  });

  it('truncation keeps the first maxLength tokens', () => {
    const text = 'The quick brown fox jumps over the lazy dog';
    const all = tok.encode(text);
    expect(all.length).toBe(9);
    expect(tok.encode(text, 4)).toEqual(all.slice(0, 4));
    expect(tok.encode(text, 100)).toEqual(all);
    expect(tok.encode(text, 0)).toEqual([]);
    expect(() => tok.encode(text, -1)).toThrow(/maxLength must be a non-negative integer/);
  });

  it('decodes the end-of-text id, cut multi-byte characters as U+FFFD, and refuses ids outside the vocabulary', () => {
    expect(tok.decode([15496, 50256])).toBe('Hello<|endoftext|>');
    const emoji = tok.encode('🎉');
    expect(emoji.length).toBeGreaterThan(1);
    expect(tok.decode(emoji.slice(0, 1))).toContain('\ufffd');
    expect(() => tok.decode([50257])).toThrow('token id 50257 is outside GPT-2');
    expect(() => tok.decode([-1])).toThrow(/outside GPT-2/);
  });
});
