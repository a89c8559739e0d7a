// The engine on its own: modules, backward, an optimizer, a state dict. A two-layer network
// learns XOR; the README shows this file (with the package's import names), and
// test/examples/engine-quickstart.test.ts runs it and compares it with the README.
// Run: node --import tsx examples/engine-quickstart.ts (it writes xor.safetensors where it runs)
import { nn, tensor, softmax, crossEntropy, Adam, tidy } from '../src/index.ts';
import { openGpu, saveSafetensorsFile } from '../src/node/index.ts'; // elsewhere: openWebGpu(), or new Gpu(device)

const gpu = await openGpu();
const x = tensor(gpu, [0, 0, 0, 1, 1, 0, 1, 1], [4, 2]);
const labels = Uint32Array.of(0, 1, 1, 0); // XOR of the two inputs
const model = new nn.Sequential(
  new nn.Linear(gpu, 2, 16, { seed: 1 }), // weight [16, 2], bias [16], drawn as torch.nn.Linear's
  new nn.GELU({ approximate: 'tanh' }),
  new nn.Linear(gpu, 16, 2, { seed: 2 }),
);
const optimizer = new Adam(model.parameters(), { lr: 0.05 });

for (let step = 0; step <= 100; step++) {
  const loss = tidy(() => { // frees every intermediate tensor but the one returned
    const l = crossEntropy(model.forward(x), labels);
    l.backward(); // fills the gradient of every parameter
    return l;
  });
  optimizer.step();
  optimizer.zeroGrad();
  if (step % 50 === 0) console.log(`step ${step}: loss ${(await loss.readF32())[0]!.toFixed(4)}`);
  loss.dispose();
}
const p = tidy(() => softmax(model.forward(x))); // rows ≈ [1, 0], [0, 1], [0, 1], [1, 0]
console.log('p(xor = 1):', Array.from(await p.readF32()).filter((_, i) => i % 2 === 1).map((v) => v.toFixed(3)).join(' '));
// Keys 0.weight, 0.bias, 2.weight, 2.bias: torch.nn.Sequential's, so PyTorch loads the file.
await saveSafetensorsFile('xor.safetensors', model.stateDict(), { force: true });
gpu.destroy();
