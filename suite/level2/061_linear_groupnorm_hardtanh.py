"""Linear, GroupNorm over feature groups, Hardtanh."""
import torch
import torch.nn as nn
import torch.nn.functional as F


class Model(nn.Module):
    def __init__(self, in_features, out_features, num_groups):
        super().__init__()
        self.linear = nn.Linear(in_features, out_features)
        self.gn = nn.GroupNorm(num_groups, out_features)

    def forward(self, x):
        return F.hardtanh(self.gn(self.linear(x)), min_val=-2.0, max_val=2.0)


batch_size = 2048
in_features = 4096
out_features = 4096
num_groups = 16

SMALL = {"batch_size": 2, "in_features": 37, "out_features": 48, "num_groups": 4}


def get_inputs():
    return [torch.randn(batch_size, in_features)]


def get_init_inputs():
    return [in_features, out_features, num_groups]


if __name__ == "__main__":
    import sys

    if "--small" in sys.argv:
        globals().update(SMALL)
    out = Model(*get_init_inputs())(*get_inputs())
    print(tuple(o.shape for o in out) if isinstance(out, (tuple, list)) else out.shape)
