"""A small CNN for 8×8 inputs trained a few steps in torch, for test/nn/cnn.test.ts:
test/nn/fixtures/cnn-state.safetensors (its state dict after 5 training steps with dropout
active, so batch-norm statistics and num_batches_tracked are not their initial values),
cnn-io.safetensors (an input batch and the eval-mode output for it; a training batch, its
labels and the cross-entropy loss before the step) and cnn-step.safetensors (the state dict after
ONE more SGD step, lr 0.1, in training mode on that batch, with dropout's p set to 0 so the step
is deterministic: every parameter and batch-norm buffer).
Run: /usr/bin/python3 scripts/cnn-reference.py"""
import pathlib

import torch
from torch import nn

import nn_safetensors

OUT = pathlib.Path(__file__).resolve().parent.parent / "test" / "nn" / "fixtures"
OUT.mkdir(parents=True, exist_ok=True)
META = {"format": "pt", "source": "scripts/cnn-reference.py", "torch": torch.__version__}


def model():
    """[N, 1, 8, 8] → [N, 10]; keep in step with cnnModel() in test/nn/cnn.test.ts."""
    return nn.Sequential(
        nn.Conv2d(1, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(8, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(), nn.AvgPool2d(2),
        nn.Flatten(), nn.Dropout(0.25), nn.Linear(16 * 2 * 2, 10))


torch.manual_seed(27)
net = model()
opt = torch.optim.SGD(net.parameters(), lr=0.1)
net.train()
for _ in range(5):
    x = torch.rand(16, 1, 8, 8)
    y = torch.randint(0, 10, (16,))
    opt.zero_grad()
    nn.functional.cross_entropy(net(x), y).backward()
    opt.step()
state = {k: v.clone() for k, v in net.state_dict().items()}
assert int(state["1.num_batches_tracked"]) == 5
nn_safetensors.save(OUT / "cnn-state.safetensors", state, META)

eval_input = torch.rand(4, 1, 8, 8)
net.eval()
with torch.no_grad():
    eval_output = net(eval_input)

step_input = torch.rand(6, 1, 8, 8)
step_labels = torch.tensor([3, 0, 9, 3, 7, 1])
net.train()
net[9].p = 0.0
opt.zero_grad()
loss = nn.functional.cross_entropy(net(step_input), step_labels)
loss.backward()
opt.step()
nn_safetensors.save(OUT / "cnn-step.safetensors", net.state_dict(), META)
nn_safetensors.save(OUT / "cnn-io.safetensors", {
    "eval_input": eval_input, "eval_output": eval_output,
    "step_input": step_input, "step_labels": step_labels, "step_loss": loss.detach().reshape(1),
}, META)
print("loss before the step", float(loss), "keys", list(state.keys()))
