"""One LSTM cell step written out: gates from two GEMMs, then the cell and hidden update."""
import torch
import torch.nn as nn


class Model(nn.Module):
    def __init__(self, input_size, hidden_size):
        super().__init__()
        self.w_ih = nn.Linear(input_size, 4 * hidden_size)
        self.w_hh = nn.Linear(hidden_size, 4 * hidden_size)

    def forward(self, x, h, c):
        i, f, g, o = torch.chunk(self.w_ih(x) + self.w_hh(h), 4, dim=1)
        c_next = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        h_next = torch.sigmoid(o) * torch.tanh(c_next)
        return h_next, c_next


batch_size = 4096
input_size = 1024
hidden_size = 1024

SMALL = {"batch_size": 2, "input_size": 12, "hidden_size": 16}


def get_inputs():
    return [torch.randn(batch_size, input_size), torch.randn(batch_size, hidden_size),
            torch.randn(batch_size, hidden_size)]


def get_init_inputs():
    return [input_size, hidden_size]


if __name__ == "__main__":
    import sys

    if "--small" in sys.argv:
        globals().update(SMALL)
    out = Model(*get_init_inputs())(*get_inputs())
    print(tuple(o.shape for o in out) if isinstance(out, (tuple, list)) else out.shape)
