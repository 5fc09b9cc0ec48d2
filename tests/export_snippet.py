# The README's "load without nas_prune" snippet: plain torch + safetensors + json.
import json
import sys

import torch
from safetensors.torch import load_file

folder = sys.argv[1]
spec = json.load(open(f"{folder}/policy.json"))
weights = load_file(f"{folder}/policy.safetensors")
act = {"relu": torch.nn.ReLU, "tanh": torch.nn.Tanh, "elu": torch.nn.ELU,
       "gelu": torch.nn.GELU, "silu": torch.nn.SiLU, "leaky_relu": torch.nn.LeakyReLU}
layers = []
sizes = spec["sizes"]
for i in range(len(sizes) - 1):
    linear = torch.nn.Linear(sizes[i], sizes[i + 1])
    linear.weight.data = weights[f"layers.{i}.weight"]
    linear.bias.data = weights[f"layers.{i}.bias"]
    layers += [linear, act[spec["activation"]]()]
policy = torch.nn.Sequential(*layers[:-1])  # no activation after the output layer

obs = torch.tensor([[0.01, -0.02, 0.03, 0.04], [0.1, 0.5, -0.1, -0.5]])
with torch.no_grad():
    out = policy(obs)
# spec["head"]["kind"]: "q" / "categorical" -> argmax; "gaussian" -> the mean, clipped
actions = out.argmax(dim=1) if spec["head"]["kind"] != "gaussian" else out
print(json.dumps(actions.tolist()))
