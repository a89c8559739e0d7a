import { readFileSync } from 'node:fs';
import { f16round, getFloat16 } from '@petamoriken/float16';
import { describe, expect, it } from 'vitest';
import { encodeSafetensors, parseSafetensors } from '../../src/nn/safetensors.ts';
import { seededRandom } from '../../src/util/random.ts';

const FIXTURE = new URL('../../../shared/fixtures/tiny-gpt2/', import.meta.url);

/** A safetensors file assembled by hand, independent of encodeSafetensors. */
function handMade(header: object, data: number[]): Uint8Array {
  const json = new TextEncoder().encode(JSON.stringify(header));
  const out = new Uint8Array(8 + json.length + data.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
  out.set(json, 8);
  out.set(data, 8 + json.length);
  return out;
}

function values(n: number, seed: number): Float32Array {
  const r = seededRandom(seed);
  return Float32Array.from({ length: n }, () => (r() - 0.5) * 8);
}

describe('safetensors reading', () => {
  it('decodes hand-made F32, F16, BF16, I64, I32 and U8 tensors, unaligned, with metadata', () => {
    const f32 = new Uint8Array(new Float32Array([1.5, -2.25]).buffer);
    const bytes = handMade(
      {
        __metadata__: { format: 'pt' },
        a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] },
        h: { dtype: 'F16', shape: [1, 3], data_offsets: [8, 14] },
        b: { dtype: 'BF16', shape: [2], data_offsets: [14, 18] },
        l: { dtype: 'I64', shape: [2], data_offsets: [18, 34] },
        i: { dtype: 'I32', shape: [1], data_offsets: [34, 38] },
        u: { dtype: 'U8', shape: [2], data_offsets: [38, 40] },
      },
      [
        ...f32,
        0x00, 0x3c, 0x00, 0xc0, 0x01, 0x00, // F16 1, -2, smallest subnormal
        0x80, 0x3f, 0x49, 0x40, // BF16 1, 3.140625
        0x07, 0, 0, 0, 0, 0, 0, 0, 0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, // I64 7, -2
        0x39, 0x30, 0, 0, // I32 12345
        0, 255,
      ],
    );
    // An odd header length puts the F32 data off 4-byte alignment in the file.
    expect((bytes.length - 40) % 4).not.toBe(0);
    const file = parseSafetensors(bytes, 'hand.safetensors');
    expect(file.metadata).toEqual({ format: 'pt' });
    expect([...file.entries.keys()]).toEqual(['a', 'h', 'b', 'l', 'i', 'u']);
    expect(file.entry('h').shape).toEqual([1, 3]);
    expect([...file.read('a')]).toEqual([1.5, -2.25]);
    expect([...file.read('h')]).toEqual([1, -2, 2 ** -24]);
    expect([...file.read('b')]).toEqual([1, 3.140625]);
    expect([...file.read('l')]).toEqual([7, -2]);
    expect([...file.read('i')]).toEqual([12345]);
    expect([...file.read('u')]).toEqual([0, 255]);
  });

  it('decodes every one of the 65536 F16 bit patterns as the float16 package does', () => {
    const raw = new Uint8Array(new Uint16Array(Array.from({ length: 65536 }, (_, i) => i)).buffer);
    const got = parseSafetensors(handMade({ all: { dtype: 'F16', shape: [65536], data_offsets: [0, raw.length] } }, [...raw])).read('all');
    const view = new DataView(raw.buffer);
    for (let i = 0; i < 65536; i++) {
      const want = getFloat16(view, 2 * i, true);
      if (!Object.is(got[i], want)) throw new Error(`F16 0x${i.toString(16)}: ${got[i]} != ${want}`);
    }
  });

  it('reads the tiny-gpt2 fixture', () => {
    const file = parseSafetensors(readFileSync(new URL('model.safetensors', FIXTURE)), 'tiny');
    expect(file.entry('wte.weight').shape).toEqual([50257, 32]);
    const wte = file.read('wte.weight');
    expect(wte.length).toBe(50257 * 32);
    expect(wte.every(Number.isFinite)).toBe(true);
    expect(wte.some((v) => v !== 0)).toBe(true);
  });
});

describe('safetensors writing', () => {
  it('round-trips every writable dtype with 8-byte aligned data', () => {
    const x = values(37, 1);
    const bytes = encodeSafetensors(
      {
        f32: { dtype: 'F32', shape: [37], data: x },
        f16: { dtype: 'F16', shape: [37, 1], data: x },
        bf16: { dtype: 'BF16', shape: [1, 37], data: x },
        i64: { dtype: 'I64', shape: [3], data: [0, -5, 2 ** 40] },
        i32: { dtype: 'I32', shape: [2], data: [-7, 50256] },
        u8: { dtype: 'U8', shape: [2, 2], data: [1, 2, 3, 250] },
        empty: { dtype: 'F32', shape: [0, 4], data: [] },
      },
      { note: 'héllo' },
    );
    const headerLength = Number(new DataView(bytes.buffer).getBigUint64(0, true));
    expect((8 + headerLength) % 8).toBe(0);
    const file = parseSafetensors(bytes, 'rt');
    expect(file.metadata).toEqual({ note: 'héllo' });
    expect(file.read('f32')).toEqual(x);
    expect([...file.read('f16')]).toEqual([...x].map(f16round));
    const bf16 = file.read('bf16');
    for (let i = 0; i < x.length; i++) {
      // bfloat16 keeps 8 significant bits: rounding errs by at most half a unit in the 8th bit.
      const halfUlp = 2 ** (Math.floor(Math.log2(Math.abs(x[i]!))) - 8);
      expect(Math.abs(bf16[i]! - x[i]!)).toBeLessThanOrEqual(halfUlp);
      expect(new Uint32Array(bf16.buffer)[i]! & 0xffff).toBe(0);
    }
    expect([...file.read('i64')]).toEqual([0, -5, 2 ** 40]);
    expect([...file.read('i32')]).toEqual([-7, 50256]);
    expect([...file.read('u8')]).toEqual([1, 2, 3, 250]);
    expect(file.read('empty').length).toBe(0);
  });

  it('rounds BF16 to nearest, ties to even', () => {
    // 1 + 2^-8 is halfway between bf16 neighbours 1 and 1 + 2^-7: the tie goes to the even 1.
    // 1 + 3·2^-8 is halfway between 1 + 2^-7 (odd) and 1 + 2^-6: it goes up. 1 + 2^-8 + 2^-20 is above halfway.
    const data = [1 + 2 ** -8, 1 + 3 * 2 ** -8, 1 + 2 ** -8 + 2 ** -20, -(1 + 2 ** -8 + 2 ** -20)];
    const file = parseSafetensors(encodeSafetensors({ t: { dtype: 'BF16', shape: [4], data } }));
    expect([...file.read('t')]).toEqual([1, 1 + 2 ** -6, 1 + 2 ** -7, -(1 + 2 ** -7)]);
  });

  it('refuses data that does not match the shape', () => {
    expect(() => encodeSafetensors({ t: { dtype: 'F32', shape: [2, 3], data: [1, 2, 3] } })).toThrow(/tensor t has 3 values but shape \[2, 3\]/);
  });
});

describe('safetensors errors name the file', () => {
  const good = encodeSafetensors({ w: { dtype: 'F32', shape: [4, 4], data: values(16, 2) } });

  it('rejects a file too short to hold a header length', () => {
    expect(() => parseSafetensors(new Uint8Array(5), 'short.bin')).toThrow(/short\.bin: not a safetensors file \(only 5 bytes\)/);
  });

  it('rejects a non-safetensors file by its impossible header length', () => {
    const text = new TextEncoder().encode('{"this is": "a JSON file, not safetensors"}');
    expect(() => parseSafetensors(text, 'config.json')).toThrow(/config\.json: not a safetensors file, or truncated \(header length \d+ does not fit/);
  });

  it('rejects a header that is not JSON', () => {
    const bytes = handMade({}, []);
    bytes.set(new TextEncoder().encode('{x'), 8);
    expect(() => parseSafetensors(bytes, 'bad.safetensors')).toThrow(/bad\.safetensors: not a safetensors file \(header is not valid JSON/);
  });

  it('reports a truncated file, naming the tensor that runs past the end', () => {
    expect(() => parseSafetensors(good.subarray(0, good.length - 1), 'cut.safetensors')).toThrow(
      /cut\.safetensors: truncated \(tensor w ends at byte \d+, but the file has only \d+ bytes\)/,
    );
  });

  it('rejects data_offsets that disagree with dtype and shape', () => {
    const bytes = handMade({ w: { dtype: 'F32', shape: [3], data_offsets: [0, 8] } }, new Array(8).fill(0));
    expect(() => parseSafetensors(bytes, 'x.safetensors')).toThrow(/x\.safetensors: tensor w: 8 data bytes do not match F32 shape \[3\]/);
  });

  it('reports an unsupported dtype when the tensor is read', () => {
    const bytes = handMade({ d: { dtype: 'F64', shape: [1], data_offsets: [0, 8] }, s: { dtype: 'SOMETHING', shape: [1], data_offsets: [8, 9] } }, new Array(9).fill(0));
    const file = parseSafetensors(bytes, 'f64.safetensors');
    expect(() => file.read('d')).toThrow(/f64\.safetensors: tensor d: unsupported dtype F64/);
    expect(() => file.read('s')).toThrow(/unsupported dtype SOMETHING/);
  });

  it('names a missing tensor', () => {
    expect(() => parseSafetensors(good, 'g.safetensors').read('nope')).toThrow(/g\.safetensors: no tensor named nope/);
  });
});
