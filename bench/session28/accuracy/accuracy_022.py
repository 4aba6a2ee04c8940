"""How accurate is level2/022's epilogue (softmax over the channels, + bias, x 2, sigmoid) in eager,
torch.compile and fuseforge, against float64? The three take the same float32 input (a stand-in
for the convolution's result, the convolution left out: its TF32 error would hide the epilogue's).
Errors of each float32 result against the float64 result rounded to float32, in units in the last
place (ulp of float32 at the reference's value) and absolute.
Run on the GPU:  PYTHONPATH=src python3 bench/session28/accuracy/accuracy_022.py
"""
import sys

import torch

import fuseforge


class Epilogue(torch.nn.Module):
    def __init__(self, c):
        super().__init__()
        self.bias = torch.nn.Parameter(torch.randn(c, 1, 1))

    def forward(self, x):
        return torch.sigmoid((torch.softmax(x, dim=1) + self.bias) * 2.0)


class Softmax(torch.nn.Module):
    def forward(self, x):
        return torch.softmax(x, dim=1)


def ulps(got: torch.Tensor, ref64: torch.Tensor) -> torch.Tensor:
    ref = ref64.float()
    spacing = (torch.nextafter(ref.abs(), torch.tensor(float("inf"), device=ref.device)) - ref.abs()).double()
    return (got.double() - ref64).abs() / spacing


def main() -> int:
    torch.manual_seed(0)
    x = torch.randn(16, 64, 126, 126, device="cuda") * 3   # (the convolution's result has about this spread)
    print(f"{torch.cuda.get_device_name()}, torch {torch.__version__}; input {list(x.shape)}, randn x 3")
    print(f"{'':10} {'':14} {'max ulp':>8} {'mean ulp':>9} {'max abs':>10}")
    for name, model in (("epilogue", Epilogue(64).cuda()), ("softmax", Softmax())):
        with torch.no_grad():
            ref = model.double()(x.double())
            model.float()
            results = {"eager": model(x), "torch.compile": torch.compile(model)(x),
                       "fuseforge": fuseforge.compile(model, [x])(x)}
        for who, got in results.items():
            u = ulps(got, ref)
            print(f"{name:10} {who:14} {u.max().item():8.1f} {u.mean().item():9.3f} "
                  f"{(got.double() - ref).abs().max().item():10.2e}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
