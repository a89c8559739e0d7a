import { readFileSync } from 'node:fs';
import { f16round, getFloat16 } from '@petamoriken/float16';
import { beforeAll, describe, expect, it } from 'vitest';
import type { Gpu } from '../../src/gpu/context.ts';
import { encodeSafetensors, parseSafetensors } from '../../src/nn/safetensors.ts';
import { saveSafetensors, loadSafetensors, tensor, rawTensor, f16Bits, type Tensor } from '../../src/engine.ts';
import { seededRandom } from '../../src/util/random.ts';
import { testGpu } from '../helpers.ts';

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

describe('state dicts in safetensors (saveSafetensors, loadSafetensors)', () => {
  let gpu: Gpu;
  beforeAll(async () => {
    gpu = await testGpu();
  });

  const dtypesOf = (bytes: Uint8Array) => Object.fromEntries([...parseSafetensors(bytes).entries].map(([k, e]) => [k, e.dtype]));

  it('keeps the order, the metadata and every f32 value; f16 as F16, exactly', async () => {
    const x = values(30, 3);
    const half = f16Bits(x);
    const dict = new Map<string, Tensor>([
      ['z.weight', tensor(gpu, x, [5, 6])],
      ['a.bias', rawTensor(gpu, half, [30], 'f16')],
      ['m.0.weight', tensor(gpu, [0.1, -0], [2, 1])],
    ]);
    const bytes = await saveSafetensors(dict, { metadata: { format: 'pt' } });
    expect(dtypesOf(bytes)).toEqual({ 'z.weight': 'F32', 'a.bias': 'F16', 'm.0.weight': 'F32' });
    expect(parseSafetensors(bytes).metadata).toEqual({ format: 'pt' });
    const back = loadSafetensors(gpu, bytes);
    expect([...back.keys()]).toEqual(['z.weight', 'a.bias', 'm.0.weight']);
    expect(back.get('z.weight')!.shape).toEqual([5, 6]);
    expect(await back.get('z.weight')!.read()).toEqual(x);
    expect(back.get('a.bias')!.dtype).toBe('f32');
    expect([...(await back.get('a.bias')!.read())]).toEqual([...x].map(f16round));
    expect(Object.is((await back.get('m.0.weight')!.read())[1], -0)).toBe(true);
    const halves = loadSafetensors(gpu, bytes, { dtype: 'f16' });
    expect(halves.get('a.bias')!.dtype).toBe('f16');
    expect(await halves.get('a.bias')!.readRaw()).toEqual(half);
    expect(await halves.get('z.weight')!.readRaw()).toEqual(half);
    for (const t of [...dict.values(), ...back.values(), ...halves.values()]) t.dispose();
  });

  it('u32 tensors save as I64 (or I32, U32 when asked) and load back exactly as u32', async () => {
    const ids = [0, 1, 2 ** 24 + 1, 2 ** 31 + 5, 2 ** 32 - 1];
    const dict = { 'bn.num_batches_tracked': tensor(gpu, [3], [], { dtype: 'u32' }), ids: tensor(gpu, ids, [5], { dtype: 'u32' }) };
    for (const integerDtype of ['I64', 'U32'] as const) {
      const bytes = await saveSafetensors(dict, integerDtype === 'I64' ? {} : { integerDtype });
      expect(dtypesOf(bytes)).toEqual({ 'bn.num_batches_tracked': integerDtype, ids: integerDtype });
      const back = loadSafetensors(gpu, bytes);
      expect(back.get('bn.num_batches_tracked')!.shape).toEqual([]);
      expect(back.get('ids')!.dtype).toBe('u32');
      expect([...(await back.get('ids')!.read())]).toEqual(ids);
      expect([...(await back.get('bn.num_batches_tracked')!.read())]).toEqual([3]);
      for (const t of back.values()) t.dispose();
    }
    await expect(saveSafetensors(dict, { integerDtype: 'I32' })).rejects.toThrow(/tensor ids holds 2147483653 \(element 3\), not an integer I32 can hold/);
    const small = { ids: tensor(gpu, [7, 2 ** 31 - 1], [2], { dtype: 'u32' }) };
    const i32 = await saveSafetensors(small, { integerDtype: 'I32' });
    expect(dtypesOf(i32)).toEqual({ ids: 'I32' });
    expect([...(await loadSafetensors(gpu, i32).get('ids')!.read())]).toEqual([7, 2 ** 31 - 1]);
    for (const t of [...Object.values(dict), ...Object.values(small)]) t.dispose();
  });

  it('loads BF16 as f32 exactly, or rounded to f16', async () => {
    const bytes = handMade({ b: { dtype: 'BF16', shape: [3], data_offsets: [0, 6] } }, [0x80, 0x3f, 0x49, 0x40, 0x80, 0xbf]);
    expect([...(await loadSafetensors(gpu, bytes).get('b')!.read())]).toEqual([1, 3.140625, -1]);
    const half = loadSafetensors(gpu, bytes, { dtype: 'f16' }).get('b')!;
    expect(half.dtype).toBe('f16');
    expect([...(await half.read())]).toEqual([1, f16round(3.140625), -1]);
  });

  it('refuses integers a u32 cannot hold, naming the file, the tensor and the value', () => {
    const int64 = (v: bigint) => [...new Uint8Array(new BigInt64Array([v]).buffer)];
    const negative = handMade({ n: { dtype: 'I64', shape: [1], data_offsets: [0, 8] } }, int64(-1n));
    expect(() => loadSafetensors(gpu, negative, { name: 'neg.safetensors' })).toThrow(/neg\.safetensors: tensor n: I64 value -1 \(element 0\) does not fit a u32 tensor/);
    const huge = handMade({ h: { dtype: 'I64', shape: [1], data_offsets: [0, 8] } }, int64(2n ** 32n));
    expect(() => loadSafetensors(gpu, huge)).toThrow(/tensor h: I64 value 4294967296 \(element 0\) does not fit a u32 tensor/);
    const i32 = handMade({ i: { dtype: 'I32', shape: [1], data_offsets: [0, 4] } }, [0xff, 0xff, 0xff, 0xff]);
    expect(() => loadSafetensors(gpu, i32)).toThrow(/tensor i: I32 value -1/);
  });

  it('bad bytes give one error naming the data', () => {
    const good = encodeSafetensors({ w: { dtype: 'F32', shape: [2], data: [1, 2] } });
    expect(() => loadSafetensors(gpu, good.subarray(0, good.length - 2), { name: 'cut.safetensors' })).toThrow(/^cut\.safetensors: truncated \(tensor w ends/);
    expect(() => loadSafetensors(gpu, new TextEncoder().encode('<html>not found</html>'), { name: 'page.html' })).toThrow(/^page\.html: not a safetensors file/);
    const f64 = handMade({ d: { dtype: 'F64', shape: [1], data_offsets: [0, 8] } }, new Array(8).fill(0));
    expect(() => loadSafetensors(gpu, f64, { name: 'f64.safetensors' })).toThrow(/^f64\.safetensors: tensor d: unsupported dtype F64/);
    expect(() => loadSafetensors(gpu, good, { dtype: 'u32' as 'f32' })).toThrow(/dtype must be 'f32' or 'f16', got u32/);
  });
});
