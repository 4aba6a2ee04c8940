"""Smooth L1 (Huber-like) loss with beta 1."""
import torch
import torch.nn as nn
import torch.nn.functional as F


class Model(nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, predictions, targets):
        return F.smooth_l1_loss(predictions, targets)


batch_size = 4096
dim = 16384

SMALL = {"batch_size": 2, "dim": 4099}


def get_inputs():
    return [torch.randn(batch_size, dim) * 2, torch.randn(batch_size, dim) * 2]


def get_init_inputs():
    return []


if __name__ == "__main__":
    import sys

    if "--small" in sys.argv:
        globals().update(SMALL)
    out = Model(*get_init_inputs())(*get_inputs())
    print(tuple(o.shape for o in out) if isinstance(out, (tuple, list)) else out.shape)
