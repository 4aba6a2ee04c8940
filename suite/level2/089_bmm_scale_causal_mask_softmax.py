"""Batched scores, x 1/sqrt(d), causal mask (masked_fill -inf), softmax."""
import torch
import torch.nn as nn


class Model(nn.Module):
    def __init__(self, seq_len):
        super().__init__()
        self.register_buffer("mask", torch.ones(seq_len, seq_len, dtype=torch.bool).triu(1))

    def forward(self, q, k):
        scores = torch.bmm(q, k.transpose(1, 2)) / (q.size(-1) ** 0.5)
        scores = scores.masked_fill(self.mask, float("-inf"))
        return torch.softmax(scores, dim=-1)


batch_size = 64
seq_len = 1024
head_dim = 128

SMALL = {"batch_size": 2, "seq_len": 33, "head_dim": 16}


def get_inputs():
    return [torch.randn(batch_size, seq_len, head_dim), torch.randn(batch_size, seq_len, head_dim)]


def get_init_inputs():
    return [seq_len]


if __name__ == "__main__":
    import sys

    if "--small" in sys.argv:
        globals().update(SMALL)
    out = Model(*get_init_inputs())(*get_inputs())
    print(tuple(o.shape for o in out) if isinstance(out, (tuple, list)) else out.shape)
