"""Physically shrink an MLP: drop the neurons its structured masks removed."""
from __future__ import annotations

import torch

from nas_prune.rl.networks import MLP


@torch.no_grad()
def shrink(net: MLP) -> MLP:
    """Return a smaller MLP without the removed hidden neurons.

    Rows of one Linear, columns of the next and the biases of removed neurons are cut;
    unstructured masks are carried over, sliced. The output equals the masked network's.
    """
    keep = [
        torch.ones(n, dtype=torch.bool) if m is None else m.clone()
        for n, m in zip(net.hidden, net.neuron_masks)
    ]
    idx = [torch.arange(net.sizes[0])] + [k.nonzero().flatten() for k in keep]
    idx.append(torch.arange(net.sizes[-1]))
    sizes = [len(i) for i in idx]
    with torch.random.fork_rng():  # building layers draws random inits; leave the RNG as is
        small = MLP(sizes, net.activation)
    for li, (old, new) in enumerate(zip(net.linears(), small.linears())):
        rows, cols = idx[li + 1], idx[li]
        new.weight.copy_(old.weight[rows][:, cols])
        new.bias.copy_(old.bias[rows])
        mask = net.weight_masks[li]
        if mask is not None:
            small.set_weight_mask(li, mask[rows][:, cols].clone())
    return small
