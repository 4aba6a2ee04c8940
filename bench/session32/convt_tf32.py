"""Where does eager's transposed convolution run TF32? For the one-phase lowering's three test
shapes (ops/convs._one_phase; tests/test_convs.OnePhase) at growing sizes: eager's largest error
from float64 (relative to the largest value; the worse of NCHW and channels-last, as
tests/test_layout._no_looser_than_eager takes it). About 1e-7: float32; about 1e-4: TF32."""
import torch
import torch.nn.functional as F

torch.manual_seed(0)
dev = "cuda"


def cl(t):
    return t.contiguous(memory_format={4: torch.channels_last, 5: torch.channels_last_3d}[t.dim()]) if t.dim() > 3 else t


def err(y, exact):
    return float((y.double() - exact).abs().max() / exact.abs().max())


CASES = {   # name: (the transposed convolution, in channels, out channels, window, input shapes)
    "1d": (lambda x, w: F.conv_transpose1d(x, w, stride=3, padding=2, dilation=3), 32, 3, (3,),
           [(2, 32, 9), (2, 32, 64), (8, 32, 512), (16, 32, 4096)]),
    "2d": (lambda x, w: F.conv_transpose2d(x, w, stride=(2, 1), padding=(1, 2), dilation=(2, 1)), 32, 16, (3, 5),
           [(2, 32, 7, 9), (2, 32, 16, 16), (2, 32, 32, 32), (8, 32, 32, 32), (2, 32, 64, 64), (8, 32, 64, 64),
            (32, 32, 96, 192)]),
    "3d": (lambda x, w: F.conv_transpose3d(x, w, stride=(2, 2, 1), padding=(0, 3, 1), dilation=(2, 4, 1)), 16, 3,
           (2, 3, 2), [(2, 16, 4, 5, 3), (2, 16, 8, 8, 8), (4, 16, 16, 16, 16), (8, 16, 16, 32, 32)]),
}
for name, (fn, cin, cout, window, shapes) in CASES.items():
    w = torch.randn(cin, cout, *window, device=dev) * 0.1
    for shape in shapes:
        x = torch.randn(shape, device=dev)
        exact = fn(x.double(), w.double())
        e = max(err(fn(x, w), exact), err(fn(cl(x), cl(w)), exact))
        print(f"{name} {str(shape):24s} eager {e:.1e} {'TF32' if e > 1e-5 else 'float32'}")
