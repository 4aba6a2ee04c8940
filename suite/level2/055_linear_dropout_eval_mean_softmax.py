"""Linear on a sequence, inference dropout (identity), mean over the sequence, softmax."""
import torch
import torch.nn as nn
import torch.nn.functional as F


class Model(nn.Module):
    def __init__(self, in_features, out_features, dropout_p):
        super().__init__()
        self.linear = nn.Linear(in_features, out_features)
        self.dropout_p = dropout_p

    def forward(self, x):
        x = F.dropout(self.linear(x), p=self.dropout_p, training=False)
        return torch.softmax(torch.mean(x, dim=1), dim=-1)


batch_size = 64
seq_len = 256
in_features = 2048
out_features = 2048
dropout_p = 0.2

SMALL = {"batch_size": 2, "seq_len": 5, "in_features": 37, "out_features": 48}


def get_inputs():
    return [torch.randn(batch_size, seq_len, in_features)]


def get_init_inputs():
    return [in_features, out_features, dropout_p]


if __name__ == "__main__":
    import sys

    if "--small" in sys.argv:
        globals().update(SMALL)
    out = Model(*get_init_inputs())(*get_inputs())
    print(tuple(o.shape for o in out) if isinstance(out, (tuple, list)) else out.shape)
