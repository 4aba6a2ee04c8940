"""EfficientNet MBConv: expand, depthwise, squeeze-and-excitation, project, residual (SiLU)."""
import torch
import torch.nn as nn
import torch.nn.functional as F


class Model(nn.Module):
    def __init__(self, channels, expand_ratio, se_ratio):
        super().__init__()
        hidden = channels * expand_ratio
        squeezed = max(1, int(channels * se_ratio))
        self.expand = nn.Sequential(nn.Conv2d(channels, hidden, 1, bias=False), nn.BatchNorm2d(hidden), nn.SiLU())
        self.depthwise = nn.Sequential(
            nn.Conv2d(hidden, hidden, 3, padding=1, groups=hidden, bias=False), nn.BatchNorm2d(hidden), nn.SiLU())
        self.se_reduce = nn.Conv2d(hidden, squeezed, 1)
        self.se_expand = nn.Conv2d(squeezed, hidden, 1)
        self.project = nn.Sequential(nn.Conv2d(hidden, channels, 1, bias=False), nn.BatchNorm2d(channels))

    def forward(self, x):
        h = self.depthwise(self.expand(x))
        s = F.adaptive_avg_pool2d(h, 1)
        s = torch.sigmoid(self.se_expand(F.silu(self.se_reduce(s))))
        return x + self.project(h * s)


batch_size = 64
channels = 40
expand_ratio = 6
se_ratio = 0.25
height = 56
width = 56

SMALL = {"batch_size": 2, "channels": 8, "height": 11, "width": 12}


def get_inputs():
    return [torch.randn(batch_size, channels, height, width)]


def get_init_inputs():
    return [channels, expand_ratio, se_ratio]


if __name__ == "__main__":
    import sys

    if "--small" in sys.argv:
        globals().update(SMALL)
    out = Model(*get_init_inputs())(*get_inputs())
    print(tuple(o.shape for o in out) if isinstance(out, (tuple, list)) else out.shape)
