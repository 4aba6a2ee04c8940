"""Rows whose runs lie side by side within a line (codegen/rows.py, _interleaved_rows): a group
norm's statistics over a channels-last convolution's output, whose groups of 4 or 8 channels are
16 or 32 bytes of each pixel's channels, go several rows to a block, consecutive threads taking
consecutive rows. The text it renders, and the results against eager on fresh inputs: on the CPU
(the twin runs the same row code over the splits) and on the GPU (the launch itself: row tiles
that end inside an image and past the last row)."""
import re

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from fuseforge.capture import capture
from fuseforge.emit import generate
from fuseforge.plan import plan

from .outputs import assert_compiled_matches

SIDE = re.compile(r"reducing axes \[2, 3\]: (\d+) rows of (\d+).*, (\d+) rows side by side a block")


class ConvGroupNorms(nn.Module):
    """level2/028's work at a small size: a transposed convolution (channels-last), GELU, and a group
    norm of 6 groups of 4 channels (its statistics: a row tile of 4 over 6 groups, so that tiles
    cross images, and the last one ends past the last row); beside it a group norm of 3 groups of
    8, planned whole (element outputs: not side by side), reading the same tensor."""
    def __init__(self):
        super().__init__()
        self.conv = nn.ConvTranspose2d(16, 24, 3, stride=2, padding=1, output_padding=1)
        self.gn4, self.gn8 = nn.GroupNorm(6, 24), nn.GroupNorm(3, 24)

    def forward(self, x):
        y = F.gelu(self.conv(x))
        return self.gn4(y), self.gn8(y)


def _inputs(device="cpu", seed=0):
    g = torch.Generator().manual_seed(seed)
    return [(torch.randn(3, 16, 64, 64, generator=g) * 2 + 0.5).to(device)]   # 3 images: 18 rows


def test_group_statistics_take_rows_side_by_side():
    text = generate(plan(capture(ConvGroupNorms(), _inputs())), name="interleaved").text
    found = sorted((int(r), int(n), int(t)) for r, n, t in SIDE.findall(text))
    assert found == [(18, 65536, 4)], found


def test_matches_eager_on_cpu():
    assert_compiled_matches(ConvGroupNorms, _inputs, "cpu", 1e-4)


@pytest.mark.gpu
def test_matches_eager():
    assert_compiled_matches(ConvGroupNorms, _inputs, "cuda", 2e-3)   # (the convolution: cuDNN's TF32, in both)
