"""How eager divides by a Python number, on the CPU and on CUDA: x / s against x * (1 / s) (the
reciprocal taken once in the operand type) and against a true division (by a 0-dim tensor on the
same device). ops.pointwise.divides_by_scalar relies on the CUDA answer being "x * (1 / s)".

    python3 bench/session10/div/eager_div.py
"""
import torch

devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
for dev in devices:
    for dt in (torch.float32, torch.float64):
        g = torch.Generator().manual_seed(0)
        x = (torch.randn(1 << 22, generator=g, dtype=dt) * 100).to(dev)
        for s in (0.7, 11.313708498984761, 3.0, 1e-5, 255.0, 6.0):
            inv = (torch.tensor(1.0, dtype=dt) / torch.tensor(s, dtype=dt)).item()
            eager = x / s
            mul = x * torch.tensor(inv, dtype=dt, device=dev)
            true = x / torch.tensor(s, dtype=dt, device=dev)
            print(f"{dev:4s} {str(dt):13s} s={s:<20} x/s == x*(1/s): {torch.equal(eager, mul)!s:5s}  "
                  f"x/s == true division: {torch.equal(eager, true)!s:5s}  (they differ in {(mul != true).sum().item()})")
