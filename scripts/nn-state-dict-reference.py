"""A torch model's state dict as safetensors, with its float64 forward and gradients, for
test/nn/state-dict.test.ts: test/nn/fixtures/reference.safetensors (the float32 state dict, as
torch saves it) and reference.json (keys in state_dict() order, output, output weight w and the
gradient of sum(w * output) for every parameter, all in float64). Also batchnorm.safetensors, a
trained BatchNorm1d's state dict: torch's int64 num_batches_tracked, as a file holds it.
Run: /usr/bin/python3 scripts/nn-state-dict-reference.py"""
import json
import pathlib

import torch

import nn_reference_model
import nn_safetensors

OUT = pathlib.Path(__file__).resolve().parent.parent / "test" / "nn" / "fixtures"
OUT.mkdir(parents=True, exist_ok=True)

torch.manual_seed(27)
model = nn_reference_model.model()
# LayerNorm starts at ones/zeros: move it off them so its parameters are tested too.
with torch.no_grad():
    model[1][1].weight.add_(torch.randn(8) * 0.3)
    model[1][1].bias.add_(torch.randn(8) * 0.3)
state = model.state_dict()
nn_safetensors.save(OUT / "reference.safetensors", state, {"format": "pt", "source": "nn-state-dict-reference.py"})

wide = nn_reference_model.model().double()
wide.load_state_dict({k: v.double() for k, v in state.items()})
out = wide(nn_reference_model.ids())
w = torch.randn(out.shape, dtype=torch.float64)
(out * w).sum().backward()
floats = lambda t: [float(v) for v in t.detach().reshape(-1).tolist()]
fixture = {
    "script": "scripts/nn-state-dict-reference.py",
    "torch": torch.__version__,
    "keys": list(state.keys()),
    "shapes": {k: list(v.shape) for k, v in state.items()},
    "ids": nn_reference_model.IDS,
    "output": {"shape": list(out.shape), "values": floats(out)},
    "w": floats(w),
    "grads": {k: floats(p.grad) for k, p in wide.named_parameters()},
}
bn = torch.nn.BatchNorm1d(3)
for _ in range(3):
    bn(torch.randn(4, 3))
bn_state = bn.state_dict()
nn_safetensors.save(OUT / "batchnorm.safetensors", bn_state)
fixture["batchnorm"] = {"keys": list(bn_state.keys()), "dtypes": {k: str(v.dtype) for k, v in bn_state.items()},
                        "values": {k: [float(x) for x in v.reshape(-1).tolist()] for k, v in bn_state.items()}}
(OUT / "reference.json").write_text(json.dumps(fixture, indent=1) + "\n")
print(f"wrote {OUT}/reference.safetensors and reference.json ({len(state)} tensors)")
