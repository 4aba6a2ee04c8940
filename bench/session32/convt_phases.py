"""level1/035's transposed convolution (stride (2, 1), dilation (2, 1), 3x5, 32 -> 32 channels):
with the dilation a multiple of the stride every tap lands on the same output rows (one phase:
the odd rows), and those rows are the plain convolution of the flipped, transposed weights
(padding (1, 2)); the other rows are the bias alone. Times cuDNN's transposed convolution against
that convolution (+ the rows put in place with ATen's copies), NCHW and channels-last, and each
one's distance from float64 (relative to the largest value). ms, median of 50 after 10 warm-up."""
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


torch.manual_seed(0)
dev = "cuda"
x = torch.randn(32, 32, 96, 192, device=dev)
w = torch.randn(32, 32, 3, 5, device=dev) * 0.05
b = torch.randn(32, device=dev)
kw = dict(stride=(2, 1), padding=(1, 2), dilation=(2, 1))
ref = F.conv_transpose2d(x, w, b, **kw)
exact = F.conv_transpose2d(x.double(), w.double(), b.double(), **kw)
scale = exact.abs().max().item()
wf = w.transpose(0, 1).flip([2, 3]).contiguous()
H = ref.shape[2]


def phases(xx, wwf):
    y = F.conv2d(xx, wwf, None, padding=(1, 2))
    out = torch.empty(ref.shape, device=dev, memory_format=torch.contiguous_format)
    out[:, :, 0::2] = b.view(-1, 1, 1)
    torch.add(y, b.view(-1, 1, 1), out=out[:, :, 1::2])
    return out


for layout in ("nchw", "cl"):
    cl = layout == "cl"
    xx = x.contiguous(memory_format=torch.channels_last) if cl else x
    ww = w.contiguous(memory_format=torch.channels_last) if cl else w
    wwf = wf.contiguous(memory_format=torch.channels_last) if cl else wf
    p = phases(xx, wwf)
    e_t = (F.conv_transpose2d(xx, ww, b, **kw).double() - exact).abs().max().item() / scale
    e_p = (p.double() - exact).abs().max().item() / scale
    a = t(lambda: F.conv_transpose2d(xx, ww, b, **kw))
    c = t(lambda: F.conv2d(xx, wwf, None, padding=(1, 2)))
    d = t(lambda: phases(xx, wwf))
    print(f"035 {layout:5s} transposed {a:.4f}  conv alone {c:.4f}  conv + rows {d:.4f}  ratio {d / a:.3f}  "
          f"from float64: transposed {e_t:.1e}, phases {e_p:.1e}")
