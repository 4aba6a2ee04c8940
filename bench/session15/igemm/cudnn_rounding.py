"""How does cuDNN's TF32 convolution (eager's default) turn float32 operands into TF32: rounded
to nearest or truncated? Its output is compared with float64 convolutions of the operands rounded
each way (the accumulation's own error is ~100x smaller than the difference between the two):
whichever it matches is the rounding a generated convolution must be no looser than."""
import torch
import torch.nn.functional as F


def tf32(x, mode):
    b = x.contiguous().view(torch.int32)
    if mode == "rna":
        b = (b + 0x1000) & ~0x1fff
    else:
        b = b & ~0x1fff
    return b.view(torch.float32)


torch.manual_seed(0)
x = torch.randn(4, 64, 64, 64, device="cuda")
w = torch.randn(128, 64, 3, 3, device="cuda") / 24
for fmt in (torch.contiguous_format, torch.channels_last):
    xc, wc = x.contiguous(memory_format=fmt), w.contiguous(memory_format=fmt)
    eager = F.conv2d(xc, wc).double()   # TF32 allowed for cuDNN by default
    exact = F.conv2d(x.double(), w.double())
    scale = exact.abs().max().item()
    row = [f"{fmt}: eager vs float64 {(eager - exact).abs().max().item() / scale:.2e}"]
    for mx in ("rna", "trunc"):
        for mw in ("rna", "trunc"):
            emul = F.conv2d(tf32(x, mx).double(), tf32(w, mw).double())
            row.append(f"x {mx} w {mw}: eager vs it {(eager - emul).abs().max().item() / scale:.2e}, "
                       f"it vs float64 {(emul - exact).abs().max().item() / scale:.2e}")
    print("\n  ".join(row))
