"""Classifier head: linear logits, cross-entropy against int64 class indices."""
import torch
import torch.nn as nn
import torch.nn.functional as F


class Model(nn.Module):
    def __init__(self, in_features, out_features):
        super().__init__()
        self.linear = nn.Linear(in_features, out_features)

    def forward(self, x, targets):
        return F.cross_entropy(self.linear(x), targets)


batch_size = 8192
in_features = 2048
out_features = 8192

SMALL = {"batch_size": 4, "in_features": 37, "out_features": 10}


def get_inputs():
    return [torch.randn(batch_size, in_features), torch.randint(0, out_features, (batch_size,))]


def get_init_inputs():
    return [in_features, out_features]


if __name__ == "__main__":
    import sys

    if "--small" in sys.argv:
        globals().update(SMALL)
    out = Model(*get_init_inputs())(*get_inputs())
    print(tuple(o.shape for o in out) if isinstance(out, (tuple, list)) else out.shape)
