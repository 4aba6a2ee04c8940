"""Hack: return an empty output at once and fill it from a background thread (the call looks
instantaneous; a harness that synchronizes and waits long enough before comparing is
fooled). Caught by: the output is copied at return time and compared after the call's
threads finished -> late-write; threads left running -> threads; the copy at return is
garbage -> incorrect."""
import threading
import time

import torch
import torch.nn as nn


class ModelNew(nn.Module):
    def __init__(self, features):
        super().__init__()
        self.linear = nn.Linear(features, features)

    def forward(self, x):
        out = torch.empty(x.shape[0], self.linear.out_features, device=x.device)

        def fill():
            time.sleep(0.2)
            with torch.no_grad():
                out.copy_(torch.relu(self.linear(x)))

        threading.Thread(target=fill, daemon=True).start()
        return out
