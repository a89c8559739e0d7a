// The package as a user gets it: `npm pack`, installed from the tarball into a fresh project,
// where `gpt2-prompt` and `gpt2-prompt/node` import, type-check with tsc, and run a forward
// that gives the hidden states the repository's own sources give.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { testGpu } from '../helpers.ts';
import { ROOT } from './hosts.ts';
import { readCheckpoint } from '../../src/node/checkpoint-file.ts';
import { GPT2 } from '../../src/gpt2/model.ts';
import { GPT2Tokenizer } from '../../src/gpt2/tokenizer.ts';
import { tidy, noGrad } from '../../src/tensor/tensor.ts';

const work = mkdtempSync(join(tmpdir(), 'gpt2-prompt-package-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

const npm = (args: string[], cwd: string) => execFileSync('npm', args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 300_000 });

// What a user writes: the engine from the package, the model files from the Node edge.
const USER_PROGRAM = `import { GPT2, GPT2Tokenizer, tidy, noGrad, type TokenBatch } from 'gpt2-prompt';
import { openGpu, readCheckpoint } from 'gpt2-prompt/node';

const checkpoint = await readCheckpoint(new URL('../node_modules/gpt2-prompt/weights/small-gpt2', import.meta.url).pathname);
const gpu = await openGpu({ quiet: true });
const model = new GPT2(gpu, checkpoint.config, checkpoint.tensors);
const ids = Uint32Array.from(new GPT2Tokenizer().encode(process.argv[2]!));
const batch: TokenBatch = { ids, lengths: Uint32Array.of(ids.length), width: ids.length };
const hidden = tidy(() => noGrad(() => model.encodePast(batch).hidden));
const values: Float32Array = await hidden.readF32();
console.log(JSON.stringify({ shape: hidden.shape, values: Array.from(values) }));
gpu.destroy();
process.exit(0);
`;

const TSCONFIG = {
  compilerOptions: { target: 'ES2022', module: 'NodeNext', moduleResolution: 'NodeNext', strict: true, outDir: 'out', rootDir: 'src', types: ['node', '@webgpu/types'], lib: ['ES2022', 'DOM'] },
  include: ['src'],
};

describe('the packed package', { timeout: 400_000 }, () => {
  it('installs from its tarball, type-checks, and runs a forward equal to the sources\'', async () => {
    npm(['pack', '--pack-destination', work], ROOT);
    const tarball = readdirSync(work).find((f) => f.endsWith('.tgz'))!;
    const project = join(work, 'project');
    execFileSync('mkdir', ['-p', join(project, 'src')]);
    writeFileSync(join(project, 'package.json'), JSON.stringify({ name: 'user-project', private: true, type: 'module' }));
    writeFileSync(join(project, 'tsconfig.json'), JSON.stringify(TSCONFIG));
    writeFileSync(join(project, 'src', 'main.ts'), USER_PROGRAM);
    // The package from the tarball; its dependencies (and the user's tools) from npm or its cache.
    npm(['install', '--prefer-offline', '--no-audit', '--no-fund', join(work, tarball), 'typescript@5.9.3', '@webgpu/types@0.1.74', '@types/node@20.19.25'], project);
    const files = execFileSync('tar', ['tzf', join(work, tarball)], { encoding: 'utf8' });
    expect(files).toContain('package/dist/browser/gpt2-prompt.js');
    expect(files).not.toMatch(/package\/(src|test)\/|package\/examples\/(?!browser\/)|package\/data\/(?!study\/)/);
    // `gpt2-prompt page` serves the page from the package.
    expect(files).toContain('package/examples/browser/main.js');
    // reproduce sets the published study's numbers beside ours.
    expect(files).toContain('package/data/study/published.json');
    // What users need only: the demo model, not the experiment's pretrained one; no source maps.
    expect(files).toContain('package/weights/small-gpt2/model.safetensors');
    expect(files).not.toMatch(/package\/weights\/imdb-gpt2\/|\.map\n/);
    expect(statSync(join(work, tarball)).size).toBeLessThan(10e6);

    // Types resolve: tsc compiles the user's program against the package's declarations.
    execFileSync(join(project, 'node_modules', '.bin', 'tsc'), ['-p', project], { cwd: project, encoding: 'utf8' });
    const text = 'The film was a delight.';
    const out = execFileSync(process.execPath, [join(project, 'out', 'main.js'), text], { cwd: project, encoding: 'utf8', timeout: 120_000 });
    const result = JSON.parse(out.trim().split('\n').at(-1)!) as { shape: number[]; values: number[] };

    const checkpoint = await readCheckpoint(join(ROOT, 'weights', 'small-gpt2'));
    const model = new GPT2(await testGpu(), checkpoint.config, checkpoint.tensors);
    const ids = Uint32Array.from(new GPT2Tokenizer().encode(text));
    const hidden = tidy(() => noGrad(() => model.encodePast({ ids, lengths: Uint32Array.of(ids.length), width: ids.length }).hidden));
    const expected = await hidden.readF32();
    hidden.dispose();
    model.dispose();
    expect(result.shape).toEqual(hidden.shape);
    expect(result.values.length).toBe(expected.length);
    expect(Math.max(...result.values.map((v, i) => Math.abs(v - expected[i]!)))).toBeLessThan(1e-5);
  });
});
