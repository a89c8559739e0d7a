// The engine on its own: tensors, a few ops, backward, an optimizer. A two-layer network
// learns XOR; the README shows this file (with the package's import names), and
// test/examples/engine-quickstart.test.ts runs it. Run: node --import tsx examples/engine-quickstart.ts
import { tensor, matmul, add, gelu, softmax, crossEntropy, Adam, tidy } from '../src/index.ts';
import { openGpu } from '../src/node/index.ts';

const gpu = await openGpu();
const x = tensor(gpu, [0, 0, 0, 1, 1, 0, 1, 1], [4, 2]);
const labels = Uint32Array.of(0, 1, 1, 0); // XOR of the two inputs
const init = (n: number, seed: number) => Array.from({ length: n }, (_, i) => Math.sin(seed * 97 + i * 13.7)); // fixed, varied
const w1 = tensor(gpu, init(2 * 16, 1), [2, 16], { requiresGrad: true });
const b1 = tensor(gpu, new Float32Array(16), [16], { requiresGrad: true });
const w2 = tensor(gpu, init(16 * 2, 2), [16, 2], { requiresGrad: true });
const optimizer = new Adam([w1, b1, w2], { lr: 0.05 });

for (let step = 0; step <= 100; step++) {
  // tidy frees every intermediate tensor the step made, except the loss it returns.
  const loss = tidy(() => {
    const logits = matmul(gelu(add(matmul(x, w1), b1)), w2);
    const l = crossEntropy(logits, labels);
    l.backward(); // gradients of w1, b1 and w2
    return l;
  });
  optimizer.step();
  optimizer.zeroGrad();
  if (step % 50 === 0) console.log(`step ${step}: loss ${(await loss.readF32())[0]!.toFixed(4)}`);
  loss.dispose();
}
const probabilities = tidy(() => softmax(matmul(gelu(add(matmul(x, w1), b1)), w2)));
console.log('p(xor = 1):', Array.from(await probabilities.readF32()).filter((_, i) => i % 2 === 1).map((p) => p.toFixed(3)).join(' '));
gpu.destroy();
