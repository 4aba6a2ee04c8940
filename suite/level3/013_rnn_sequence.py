"""Two-layer tanh nn.RNN over a short sequence (batch first), returns all outputs."""
import torch
import torch.nn as nn


class Model(nn.Module):
    def __init__(self, input_size, hidden_size, num_layers):
        super().__init__()
        self.rnn = nn.RNN(input_size, hidden_size, num_layers, batch_first=True)

    def forward(self, x, h0):
        return self.rnn(x, h0)[0]


batch_size = 64
seq_len = 64
input_size = 256
hidden_size = 512
num_layers = 2

SMALL = {"batch_size": 2, "seq_len": 5, "input_size": 12, "hidden_size": 16}


def get_inputs():
    return [torch.randn(batch_size, seq_len, input_size), torch.randn(num_layers, batch_size, hidden_size)]


def get_init_inputs():
    return [input_size, hidden_size, num_layers]


if __name__ == "__main__":
    import sys

    if "--small" in sys.argv:
        globals().update(SMALL)
    out = Model(*get_init_inputs())(*get_inputs())
    print(tuple(o.shape for o in out) if isinstance(out, (tuple, list)) else out.shape)
