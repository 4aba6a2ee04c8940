"""Batched scores bmm(q, k^T), softmax over the last dimension."""
import torch
import torch.nn as nn


class Model(nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, q, k):
        return torch.softmax(torch.bmm(q, k.transpose(1, 2)), dim=-1)


batch_size = 64
seq_len = 1024
head_dim = 128

SMALL = {"batch_size": 2, "seq_len": 33, "head_dim": 16}


def get_inputs():
    return [torch.randn(batch_size, seq_len, head_dim), torch.randn(batch_size, seq_len, head_dim)]


def get_init_inputs():
    return []


if __name__ == "__main__":
    import sys

    if "--small" in sys.argv:
        globals().update(SMALL)
    out = Model(*get_init_inputs())(*get_inputs())
    print(tuple(o.shape for o in out) if isinstance(out, (tuple, list)) else out.shape)
