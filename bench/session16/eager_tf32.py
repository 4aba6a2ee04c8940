"""Where eager's cuDNN convolution uses TF32 (PyTorch's default flags, benchmark mode off): for
each shape, the max error of eager's float32 convolution (NCHW, and channels-last) against float64,
relative to the largest value. float32 algorithms land near 1e-6, TF32 near 3e-4. Prints one line
per shape: N C H W K R S, the two errors, and the pixels x output channels x k of its GEMM view."""
import itertools

import torch
import torch.nn.functional as F

torch.manual_seed(0)
SUITE = [(64, 32, 128, 128, 64, 3, 3, 1), (32, 32, 128, 256, 64, 3, 7, 1), (32, 32, 256, 192, 64, 5, 3, 2),
         (32, 128, 128, 128, 256, 1, 1, 1), (32, 64, 112, 112, 128, 1, 1, 1), (64, 64, 128, 128, 128, 3, 3, 1)]
GRID = [(n, c, hw, hw, k, r, r, 1) for n, c, hw, k, r in itertools.product((1, 2, 8, 32), (16, 32, 64), (8, 16, 32, 64),
                                                                            (16, 64, 128), (1, 3))]


def err(x, w, stride, cl):
    if cl:
        x, w = x.contiguous(memory_format=torch.channels_last), w.contiguous(memory_format=torch.channels_last)
    y = F.conv2d(x, w, stride=stride)
    ref = F.conv2d(x.double(), w.double(), stride=stride)
    return float((y.double() - ref).abs().max() / ref.abs().max())


print(f"{'N':>3} {'C':>4} {'H':>4} {'W':>4} {'K':>4} {'R':>2} {'S':>2} {'nchw':>9} {'cl':>9} {'M':>9} {'mnk':>12}")
for n, c, h, w_, k, r, s, st in SUITE + GRID:
    x = torch.randn(n, c, h, w_, device="cuda")
    w = torch.randn(k, c, r, s, device="cuda")
    a, b = err(x, w, st, False), err(x, w, st, True)
    m = n * ((h - r) // st + 1) * (w_ - s + 1)
    print(f"{n:>3} {c:>4} {h:>4} {w_:>4} {k:>4} {r:>2} {s:>2} {a:9.1e} {b:9.1e} {m:>9} {m * k * c * r * s:>12}")
