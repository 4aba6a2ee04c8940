"""A stride-1 transposed convolution is a convolution of the flipped, transposed weights with
padding k - 1 - p: does cuDNN run that (fprop) faster than the transposed one (dgrad)? Times
both on level1/033's and 036's shapes (TF32 allowed, eager's default), channels-last and NCHW,
and how far each is from float64 (relative to the largest value): the same error, TF32 both;
one ~1e-6, float32 there. Prints ms, median of 50 timed calls after 10 warm-up calls."""
import torch
import torch.nn.functional as F


def t(fn, n=50):
    for _ in range(10):
        fn()
    torch.cuda.synchronize()
    es = [(torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)) for _ in range(n)]
    for a, b in es:
        a.record(); fn(); b.record()
    torch.cuda.synchronize()
    return sorted(a.elapsed_time(b) for a, b in es)[n // 2]


def case(name, x, w, b):
    d = x.dim() - 2
    conv, convt = (F.conv2d, F.conv_transpose2d) if d == 2 else (F.conv3d, F.conv_transpose3d)
    fmt = torch.channels_last if d == 2 else torch.channels_last_3d
    wf = w.transpose(0, 1).flip(list(range(2, 2 + d))).contiguous()
    k = w.shape[2]
    ref = convt(x, w, b)
    exact = convt(x.double(), w.double(), None if b is None else b.double())
    scale = exact.abs().max().item()
    for layout in ("nchw", "cl"):
        xx = x.contiguous(memory_format=fmt) if layout == "cl" else x
        ww = w.contiguous(memory_format=fmt) if layout == "cl" else w
        wwf = wf.contiguous(memory_format=fmt) if layout == "cl" else wf
        y = conv(xx, wwf, b, padding=k - 1)
        err = (y - ref).abs().max().item() / ref.abs().max().item()
        e_t = (convt(xx, ww, b).double() - exact).abs().max().item() / scale
        e_c = (y.double() - exact).abs().max().item() / scale
        a = t(lambda: convt(xx, ww, b))
        c = t(lambda: conv(xx, wwf, b, padding=k - 1))
        print(f"{name:10s} {layout:5s} transposed {a:.4f}  as conv {c:.4f}  ratio {c / a:.3f}  apart {err:.1e}  "
              f"from float64: transposed {e_t:.1e}, as conv {e_c:.1e}")


torch.manual_seed(0)
dev = "cuda"
case("033", torch.randn(32, 64, 128, 128, device=dev), torch.randn(64, 32, 3, 3, device=dev) * 0.05,
     None)
case("036", torch.randn(8, 32, 16, 64, 64, device=dev), torch.randn(32, 16, 3, 3, 3, device=dev) * 0.05,
     None)
