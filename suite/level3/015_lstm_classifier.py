"""nn.LSTM over a short sequence, the last step through a linear classifier."""
import torch
import torch.nn as nn


class Model(nn.Module):
    def __init__(self, input_size, hidden_size, num_layers, num_classes):
        super().__init__()
        self.lstm = nn.LSTM(input_size, hidden_size, num_layers, batch_first=True)
        self.fc = nn.Linear(hidden_size, num_classes)

    def forward(self, x, h0, c0):
        out = self.lstm(x, (h0, c0))[0]
        return self.fc(out[:, -1, :])


batch_size = 64
seq_len = 64
input_size = 256
hidden_size = 512
num_layers = 2
num_classes = 10

SMALL = {"batch_size": 2, "seq_len": 5, "input_size": 12, "hidden_size": 16}


def get_inputs():
    return [torch.randn(batch_size, seq_len, input_size), torch.randn(num_layers, batch_size, hidden_size),
            torch.randn(num_layers, batch_size, hidden_size)]


def get_init_inputs():
    return [input_size, hidden_size, num_layers, num_classes]


if __name__ == "__main__":
    import sys

    if "--small" in sys.argv:
        globals().update(SMALL)
    out = Model(*get_init_inputs())(*get_inputs())
    print(tuple(o.shape for o in out) if isinstance(out, (tuple, list)) else out.shape)
