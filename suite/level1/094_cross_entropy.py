"""Cross-entropy loss of logits against int64 class indices (mean)."""
import torch
import torch.nn as nn
import torch.nn.functional as F


class Model(nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, predictions, targets):
        return F.cross_entropy(predictions, targets)


batch_size = 32768
num_classes = 1000

SMALL = {"batch_size": 8, "num_classes": 10}


def get_inputs():
    return [torch.randn(batch_size, num_classes) * 2, torch.randint(0, num_classes, (batch_size,))]


def get_init_inputs():
    return []


if __name__ == "__main__":
    import sys

    if "--small" in sys.argv:
        globals().update(SMALL)
    out = Model(*get_init_inputs())(*get_inputs())
    print(tuple(o.shape for o in out) if isinstance(out, (tuple, list)) else out.shape)
