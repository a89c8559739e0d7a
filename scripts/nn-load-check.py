"""Loads a state dict saved by the engine into the torch model of nn_reference_model (strict),
and prints JSON: the file's keys, dtypes and metadata, and the model's float64 output for the
fixed ids. test/nn/state-dict.test.ts runs it. Usage: /usr/bin/python3 scripts/nn-load-check.py FILE"""
import json
import sys

import torch

import nn_reference_model
import nn_safetensors

tensors, metadata = nn_safetensors.load(sys.argv[1])
result = {"keys": list(tensors), "dtypes": {k: str(v.dtype) for k, v in tensors.items()}, "metadata": metadata}
floats = {k: v for k, v in tensors.items() if v.is_floating_point()}
if set(floats) == set(nn_reference_model.model().state_dict()):
    model = nn_reference_model.model().double()
    model.load_state_dict({k: v.double() for k, v in floats.items()}, strict=True)
    with torch.no_grad():
        result["output"] = [float(v) for v in model(nn_reference_model.ids()).reshape(-1).tolist()]
result["integers"] = {k: [int(x) for x in v.reshape(-1).tolist()] for k, v in tensors.items() if not v.is_floating_point()}
print(json.dumps(result))
