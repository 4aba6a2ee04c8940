"""Follow-up of placement.py (which found level1/035's transposed convolution 0.611 ms with its
input 4096 bytes past a 2 MB boundary, 0.650-0.654 at 0, 512, 1024, 2048 and 65536): the input's
offset swept finer, for 035's and 033's transposed convolutions and two forward ones (level2/022's,
001's shape), all channels-last through cuDNN as the generated files call them.
Run on the GPU:  PYTHONPATH=src python3 bench/session28/placement/placement2.py
"""
import sys

import torch
import torch.nn.functional as F

from fuseforge.bench import time_cuda

MB = 1 << 20
KB = 1 << 10
OFFSETS = [0, 1 * KB, 2 * KB, 3 * KB, 4 * KB, 5 * KB, 6 * KB, 8 * KB, 12 * KB, 16 * KB, 20 * KB, 24 * KB, 32 * KB,
           36 * KB, 48 * KB, 64 * KB, 68 * KB, 128 * KB, 132 * KB, MB, MB + 4 * KB]
# (name, input shape n c h w, weight shape, function, keywords)
CASES = [
    ("level1/035 convT", (32, 32, 96, 192), (32, 32, 3, 5), F.conv_transpose2d,
     dict(stride=(2, 1), padding=(1, 2), dilation=(2, 1))),
    ("level1/033 convT", (32, 64, 128, 128), (64, 32, 3, 3), F.conv_transpose2d, {}),
    ("level2/022 conv", (64, 32, 128, 128), (64, 32, 3, 3), F.conv2d, {}),
    ("level2/001 conv", (64, 32, 128, 128), (64, 32, 3, 3), F.conv2d, dict(padding=1)),
]


def main() -> int:
    torch.manual_seed(0)
    cl = torch.channels_last
    print(f"{torch.cuda.get_device_name()}, torch {torch.__version__}: ms by the input's offset from 2 MB", flush=True)
    print(f"{'':18}" + "".join(f"{o // KB:>7}K" for o in OFFSETS))
    for name, xs, ws, fn, kw in CASES:
        n, c, h, w_ = xs
        w = torch.randn(*ws, device="cuda").contiguous(memory_format=cl)
        x0 = torch.randn(*xs, device="cuda")
        base = torch.empty(2 * MB // 4 + x0.numel() + OFFSETS[-1] // 4, device="cuda")
        start = (-base.data_ptr()) % (2 * MB) // 4
        want = fn(x0.contiguous(memory_format=cl), w, **kw)
        row = []
        for off in OFFSETS:
            x = base[start + off // 4: start + off // 4 + x0.numel()].view(n, h, w_, c).permute(0, 3, 1, 2)
            x.copy_(x0)
            assert torch.equal(fn(x, w, **kw), want)
            row.append(time_cuda(lambda: fn(x, w, **kw), (), trials=15).median_ms)
        print(f"{name:18}" + "".join(f"{t:8.4f}" for t in row), flush=True)
        del base, want
    return 0


if __name__ == "__main__":
    sys.exit(main())
