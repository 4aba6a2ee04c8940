"""Does running a convolution chain over chunks of the batch, each chunk's intermediates left in L2,
beat running it over the whole batch? level2/024's chain (NCHW input -> channels-last copy -> cuDNN
3x3 conv 64 -> 64 -> swish + input), timed whole and chunked, eager kernels and torch.compile."""
import statistics
import sys

import torch
import torch.nn.functional as F

torch.manual_seed(0)
dev = "cuda"
N, C, H, W = 64, 64, 128, 128
x = torch.randn(N, C, H, W, device=dev)
w = (torch.randn(C, C, 3, 3, device=dev) * 0.05).contiguous(memory_format=torch.channels_last)
b = torch.randn(C, device=dev)
flush = torch.empty(256 * 1024 * 1024 // 4, device=dev)


def timed(fn, trials=30):
    for _ in range(3):
        fn()
    ts = []
    for _ in range(trials):
        flush.zero_()
        s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        s.record(); fn(); e.record(); torch.cuda.synchronize()
        ts.append(s.elapsed_time(e))
    return statistics.median(ts)


def model(x):
    y = F.conv2d(x, w, b, padding=1)
    return y * torch.sigmoid(y) + x


def chunked(c):
    def f(x):
        return torch.cat([model(x[i:i + c]) for i in range(0, N, c)])
    return f


def graphed(fn):
    fn(); torch.cuda.synchronize()
    g = torch.cuda.CUDAGraph()
    with torch.cuda.graph(g):
        fn()
    return g.replay


def kernels(fn, label):
    fn(); torch.cuda.synchronize()
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CUDA]) as p:
        fn(); torch.cuda.synchronize()
    tot = {}
    for ev in p.events():
        if ev.device_type == torch.autograd.DeviceType.CUDA:
            k = ev.name[:60]
            tot[k] = tot.get(k, 0.0) + ev.device_time_total / 1000
    print(f"  kernels {label}: " + "; ".join(f"{k} {v:.3f}" for k, v in sorted(tot.items(), key=lambda kv: -kv[1])[:5]))


ref = model(x)
print(torch.cuda.get_device_name(), torch.__version__)
full = torch.compile(model)
print(f"eager whole          {timed(lambda: model(x)):.4f} ms")
print(f"compile whole        {timed(lambda: full(x)):.4f} ms   graphed {timed(graphed(lambda: full(x))):.4f}")
kernels(lambda: full(x), "compile whole")
for c in [int(a) for a in (sys.argv[1:] or ["2", "4", "8", "16"])]:
    f = torch.compile(chunked(c))
    out = f(x)
    err = (out - ref).abs().max().item()
    print(f"compile chunks of {c:2d} {timed(lambda: f(x)):.4f} ms   graphed {timed(graphed(lambda: f(x))):.4f}"
          f"   (max |diff| vs float64-free ref {err:.2e})")
    kernels(lambda: f(x), f"chunks of {c}")
