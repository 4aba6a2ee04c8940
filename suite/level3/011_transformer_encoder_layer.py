"""nn.TransformerEncoderLayer (post-norm, ReLU, dropout 0, batch first)."""
import torch
import torch.nn as nn


class Model(nn.Module):
    def __init__(self, d_model, num_heads, dim_feedforward):
        super().__init__()
        self.layer = nn.TransformerEncoderLayer(d_model, num_heads, dim_feedforward, dropout=0.0, batch_first=True)

    def forward(self, x):
        return self.layer(x)


batch_size = 16
seq_len = 512
d_model = 512
num_heads = 8
dim_feedforward = 2048

SMALL = {"batch_size": 2, "seq_len": 9, "d_model": 32, "num_heads": 4, "dim_feedforward": 64}


def get_inputs():
    return [torch.randn(batch_size, seq_len, d_model)]


def get_init_inputs():
    return [d_model, num_heads, dim_feedforward]


if __name__ == "__main__":
    import sys

    if "--small" in sys.argv:
        globals().update(SMALL)
    out = Model(*get_init_inputs())(*get_inputs())
    print(tuple(o.shape for o in out) if isinstance(out, (tuple, list)) else out.shape)
