# The README's "load without nas_prune" snippet: plain torch + safetensors + json, for
# both network families (mlp, cnn). Usage: python export_snippet.py TRIAL_DIR OBS.json
import json
import sys

import torch
from safetensors.torch import load_file

ACT = {"relu": torch.nn.ReLU, "tanh": torch.nn.Tanh, "elu": torch.nn.ELU,
       "gelu": torch.nn.GELU, "silu": torch.nn.SiLU, "leaky_relu": torch.nn.LeakyReLU}


class Image(torch.nn.Module):
    """Flat observations back to (N, C, H, W) images."""

    def __init__(self, spec):
        super().__init__()
        self.chw, self.last = spec["image"], spec["channels_last"]

    def forward(self, x):
        c, h, w = self.chw
        return x.reshape(-1, h, w, c).permute(0, 3, 1, 2) if self.last else x.reshape(-1, c, h, w)


class Normalize(torch.nn.Module):
    """The observation statistics (policy.json "obs_norm", if the agent normalised)."""

    def __init__(self, spec, weights):
        super().__init__()
        self.clip, self.eps = spec["obs_norm"]["clip"], spec["obs_norm"]["eps"]
        self.mean, self.var = weights["obs_norm.mean"], weights["obs_norm.var"]

    def forward(self, x):
        return ((x - self.mean) / torch.sqrt(self.var + self.eps)).clamp(-self.clip, self.clip)


def linear(weights, name):
    w = weights[f"{name}.weight"]
    layer = torch.nn.Linear(w.shape[1], w.shape[0])
    layer.weight.data, layer.bias.data = w, weights[f"{name}.bias"]
    return layer


def load(folder):
    spec = json.load(open(f"{folder}/policy.json"))
    weights = load_file(f"{folder}/policy.safetensors")
    act = ACT[spec["activation"]]
    layers = [Normalize(spec, weights)] if "obs_norm" in spec else []
    if spec["type"] == "cnn":
        layers.append(Image(spec))
        for i, (k, s) in enumerate(zip(spec["kernels"], spec["strides"])):
            w = weights[f"convs.{i}.weight"]
            conv = torch.nn.Conv2d(w.shape[1], w.shape[0], k, s)
            conv.weight.data, conv.bias.data = w, weights[f"convs.{i}.bias"]
            layers += [conv, act()]
        layers.append(torch.nn.Flatten())
        names = [f"fc.{i}" for i in range(len(spec["hidden"]) + 1)]
    else:
        names = [f"layers.{i}" for i in range(len(spec["sizes"]) - 1)]
    for name in names:
        layers += [linear(weights, name), act()]
    return torch.nn.Sequential(*layers[:-1]), spec  # no activation after the output layer


policy, spec = load(sys.argv[1])
obs = torch.tensor(json.load(open(sys.argv[2])), dtype=torch.float32)
with torch.no_grad():
    out = policy(obs)
# spec["head"]["kind"]: "q" / "categorical" -> argmax; "gaussian" -> the mean, clipped;
# "squashed" (SAC) -> tanh of the first len(low) outputs, rescaled to [low, high]
head = spec["head"]
if head["kind"] == "gaussian":
    actions = out.clamp(torch.tensor(head["low"]), torch.tensor(head["high"]))
elif head["kind"] == "squashed":
    low, high = torch.tensor(head["low"]), torch.tensor(head["high"])
    actions = low + (torch.tanh(out[:, :len(low)]) + 1.0) * (0.5 * (high - low))
else:
    actions = out.argmax(dim=1)
print(json.dumps(actions.tolist()))
