"""Logits divided by a temperature, log_softmax, NLL loss against int64 labels."""
import torch
import torch.nn as nn
import torch.nn.functional as F


class Model(nn.Module):
    def __init__(self, temperature):
        super().__init__()
        self.temperature = temperature

    def forward(self, logits, labels):
        logp = torch.log_softmax(logits / self.temperature, dim=-1)
        return F.nll_loss(logp, labels)


batch_size = 16384
num_classes = 4096
temperature = 0.7

SMALL = {"batch_size": 4, "num_classes": 100}


def get_inputs():
    return [torch.randn(batch_size, num_classes), torch.randint(0, num_classes, (batch_size,))]


def get_init_inputs():
    return [temperature]


if __name__ == "__main__":
    import sys

    if "--small" in sys.argv:
        globals().update(SMALL)
    out = Model(*get_init_inputs())(*get_inputs())
    print(tuple(o.shape for o in out) if isinstance(out, (tuple, list)) else out.shape)
