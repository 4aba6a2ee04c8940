"""Does level1/035's cuDNN transposed convolution take one of two times depending on where its
input and its result lie in memory? (bench/session28/ab_copy: the generated file timed 0.730 or
0.770 ms, the same file in two processes; its dgrad kernel 0.609 or 0.643 ms in the profile.)

The convolution as the generated file calls it (channels-last input and weight, cuDNN), timed
(bench.time_cuda: L2 flushed, median) with the input at an offset from a 2 MB boundary and the
result placed at an offset too: a cached block freed, a filler of 1 MB + the offset taken from its
start, so that the result is split from the rest. Prints the result's observed offset with each
time. Run on the GPU:  PYTHONPATH=src python3 bench/session28/placement/placement.py
"""
import sys

import torch
import torch.nn.functional as F

from fuseforge.bench import time_cuda

N, C, K, H, W = 32, 32, 32, 96, 192
MB = 1 << 20
OFFSETS = [0, 512, 1024, 2048, 4096, 65536]


def main() -> int:
    torch.manual_seed(0)
    cl = torch.channels_last
    w = torch.randn(C, K, 3, 5, device="cuda").contiguous(memory_format=cl)
    x0 = torch.randn(N, C, H, W, device="cuda").contiguous(memory_format=cl)
    kw = dict(stride=(2, 1), padding=(1, 2), dilation=(2, 1))
    out_bytes = F.conv_transpose2d(x0, w, **kw).numel() * 4
    print(f"{torch.cuda.get_device_name()}, torch {torch.__version__}; result {out_bytes / MB:.1f} MB", flush=True)
    base = torch.empty(2 * MB // 4 + x0.numel() + OFFSETS[-1] // 4, device="cuda")
    start = (-base.data_ptr()) % (2 * MB) // 4   # (floats to the next 2 MB boundary)
    print("input off  result off (observed before, after)   ms")
    for xo in OFFSETS:
        x = base[start + xo // 4: start + xo // 4 + x0.numel()].view(N, H, W, C).permute(0, 3, 1, 2)
        x.copy_(x0)
        for ro in OFFSETS:
            torch.cuda.empty_cache()
            block = torch.empty((out_bytes + 64 * MB) // 4, device="cuda")
            del block   # (cached: the filler and then the result are split from it)
            filler = torch.empty((MB + ro) // 4, device="cuda")
            want = F.conv_transpose2d(x, w, **kw)
            seen = want.data_ptr() % (2 * MB)
            del want   # (each timed call's result then takes its place)
            t = time_cuda(lambda: F.conv_transpose2d(x, w, **kw), (), trials=15).median_ms
            want = F.conv_transpose2d(x, w, **kw)
            seen2 = want.data_ptr() % (2 * MB)
            print(f"{xo:9d}  {ro:10d} ({seen:8d} {seen2:8d})  {t:.4f}", flush=True)
            del want, filler
    return 0


if __name__ == "__main__":
    sys.exit(main())
