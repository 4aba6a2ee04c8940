"""Where eager's cuDNN 3D convolution uses TF32 (PyTorch's default flags), for the suite's 3D
shapes (16 input channels, below the 2D kernel's 32-channel rule) and a small grid: the max error of
eager's float32 convolution (NCDHW, and channels-last 3D) against float64, relative to the largest
value (float32 algorithms land near 1e-6, TF32 near 3e-4). The profile of level2/034
(bench/session17/profile2) shows eager's kernel for its shape is a TF32 one
(sm80_xmma_fprop_implicit_gemm_indexed_wo_smem_tf32f32...). A generated 3D convolution in TF32
is no looser than eager only where eager runs TF32 in at least one layout.
    python3 bench/session17/eager_tf32_3d.py"""
import itertools

import torch
import torch.nn.functional as F

torch.manual_seed(0)
SUITE = [(16, 16, 16, 64, 64, 32, 3, 1), (16, 16, 32, 64, 64, 32, 3, 1), (8, 32, 32, 64, 64, 64, 3, 1)]
GRID = [(n, c, d, hw, hw, k, r, 1) for n, c, d, hw, k, r in itertools.product((2, 16), (8, 16, 32), (8, 16), (16, 64),
                                                                               (16, 32), (1, 3))]


def err(x, w, stride, cl):
    if cl:
        x, w = x.contiguous(memory_format=torch.channels_last_3d), w.contiguous(memory_format=torch.channels_last_3d)
    y = F.conv3d(x, w, stride=stride)
    ref = F.conv3d(x.double(), w.double(), stride=stride)
    return float((y.double() - ref).abs().max() / ref.abs().max())


print(f"{'N':>3} {'C':>4} {'D':>4} {'H':>4} {'W':>4} {'K':>4} {'R':>2} {'ncdhw':>9} {'cl':>9}")
for n, c, d, h, w_, k, r, st in SUITE + GRID:
    x = torch.randn(n, c, d, h, w_, device="cuda")
    w = torch.randn(k, c, r, r, r, device="cuda")
    print(f"{n:>3} {c:>4} {d:>4} {h:>4} {w_:>4} {k:>4} {r:>2} {err(x, w, st, False):9.1e} {err(x, w, st, True):9.1e}")
