"""KL divergence between two probability distributions (batchmean)."""
import torch
import torch.nn as nn
import torch.nn.functional as F


class Model(nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, predictions, targets):
        return F.kl_div(torch.log(predictions), targets, reduction="batchmean")


batch_size = 4096
num_classes = 16384

SMALL = {"batch_size": 4, "num_classes": 1000}


def get_inputs():
    return [torch.randn(batch_size, num_classes).softmax(dim=-1),
            torch.randn(batch_size, num_classes).softmax(dim=-1)]


def get_init_inputs():
    return []


if __name__ == "__main__":
    import sys

    if "--small" in sys.argv:
        globals().update(SMALL)
    out = Model(*get_init_inputs())(*get_inputs())
    print(tuple(o.shape for o in out) if isinstance(out, (tuple, list)) else out.shape)
