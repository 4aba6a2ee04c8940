"""A model that applies every registry op once, each to fresh inputs, so one build checks all.

Each case calls the ATen overload by name, so the captured graph holds exactly that target,
and the test can check it was generated (not left to ATen) and compare it with eager.
Inputs have odd sizes; `yb` broadcasts; `xt` is non-contiguous (a transposed tensor).
"""
import torch

A = torch.ops.aten

# name -> fn(inputs dict) -> tensor. The key is the registry target the case covers.
CASES = {
    "aten.add.Tensor": lambda t: A.add.Tensor(t["x"], t["yb"], alpha=2),
    "aten.add.Scalar": lambda t: A.add.Scalar(t["x"], 1.5),
    "aten.sub.Tensor": lambda t: A.sub.Tensor(t["xt"], t["x"]),
    "aten.sub.Scalar": lambda t: A.sub.Scalar(t["x"], 3),
    "aten.rsub.Tensor": lambda t: A.rsub.Tensor(t["x"], t["yb"], alpha=0.5),
    "aten.rsub.Scalar": lambda t: A.rsub.Scalar(t["x"], 2.0),
    "aten.mul.Tensor": lambda t: A.mul.Tensor(t["x"], t["yb"]),
    "aten.mul.Scalar": lambda t: A.mul.Scalar(t["x"], -1.25),
    "aten.div.Tensor": lambda t: A.div.Tensor(t["x"], t["pos"]),
    "aten.div.Scalar": lambda t: A.div.Scalar(t["x"], 3.0),
    "aten.div.Tensor_mode": lambda t: A.div.Tensor_mode(t["x"] * 7, t["yb"], rounding_mode="floor"),
    "aten.div.Scalar_mode": lambda t: A.div.Scalar_mode(t["x"] * 7, -2.0, rounding_mode="trunc"),
    "aten.remainder.Tensor": lambda t: A.remainder.Tensor(t["x"] * 5, t["yb"]),
    "aten.remainder.Scalar": lambda t: A.remainder.Scalar(t["i"], 3),
    "aten.fmod.Tensor": lambda t: A.fmod.Tensor(t["x"] * 5, t["yb"]),
    "aten.fmod.Scalar": lambda t: A.fmod.Scalar(t["i"], 4),
    "aten.neg.default": lambda t: A.neg.default(t["xt"]),
    "aten.abs.default": lambda t: A.abs.default(t["i"]),
    "aten.reciprocal.default": lambda t: A.reciprocal.default(t["pos"]),
    "aten.square.default": lambda t: A.square.default(t["x"]),
    "aten.addcmul.default": lambda t: A.addcmul.default(t["x"], t["xt"], t["yb"], value=0.5),
    "aten.addcdiv.default": lambda t: A.addcdiv.default(t["x"], t["xt"], t["pos"], value=2),
    "aten.lerp.Scalar": lambda t: A.lerp.Scalar(t["x"], t["xt"], 0.3),
    "aten.lerp.Tensor": lambda t: A.lerp.Tensor(t["x"], t["xt"], t["unit"]),
    "aten.pow.Tensor_Scalar": lambda t: A.pow.Tensor_Scalar(t["pos"], 1.7),
    "aten.pow.Tensor_Tensor": lambda t: A.pow.Tensor_Tensor(t["pos"], t["yb"]),
    "aten.pow.Scalar": lambda t: A.pow.Scalar(2.5, t["x"]),
    "aten.minimum.default": lambda t: A.minimum.default(t["x"], t["yb"]),
    "aten.min.other": lambda t: A.min.other(t["x"], t["xt"]),
    "aten.maximum.default": lambda t: A.maximum.default(t["i"], t["j"]),
    "aten.max.other": lambda t: A.max.other(t["x"], t["yb"]),
    "aten.fmin.default": lambda t: A.fmin.default(t["x"], t["xt"]),
    "aten.fmax.default": lambda t: A.fmax.default(t["x"], t["xt"]),
    "aten.clamp.default": lambda t: A.clamp.default(t["x"], -0.5, 0.7),
    "aten.clamp.Tensor": lambda t: A.clamp.Tensor(t["x"], t["yb"], None),
    "aten.clamp_min.default": lambda t: A.clamp_min.default(t["i"], 2),
    "aten.clamp_min.Tensor": lambda t: A.clamp_min.Tensor(t["x"], t["xt"]),
    "aten.clamp_max.default": lambda t: A.clamp_max.default(t["x"], 0.25),
    "aten.clamp_max.Tensor": lambda t: A.clamp_max.Tensor(t["x"], t["yb"]),
    "aten.hardtanh.default": lambda t: A.hardtanh.default(t["x"], -0.3, 0.6),
    "aten.relu.default": lambda t: A.relu.default(t["xt"]),
    "aten.relu6.default": lambda t: A.relu6.default(t["x"] * 8),
    "aten.exp.default": lambda t: A.exp.default(t["x"]),
    "aten.exp2.default": lambda t: A.exp2.default(t["x"]),
    "aten.expm1.default": lambda t: A.expm1.default(t["x"]),
    "aten.log.default": lambda t: A.log.default(t["pos"]),
    "aten.log2.default": lambda t: A.log2.default(t["pos"]),
    "aten.log10.default": lambda t: A.log10.default(t["pos"]),
    "aten.log1p.default": lambda t: A.log1p.default(t["pos"]),
    "aten.sqrt.default": lambda t: A.sqrt.default(t["pos"]),
    "aten.rsqrt.default": lambda t: A.rsqrt.default(t["pos"]),
    "aten.sin.default": lambda t: A.sin.default(t["x"]),
    "aten.cos.default": lambda t: A.cos.default(t["x"]),
    "aten.tan.default": lambda t: A.tan.default(t["x"]),
    "aten.asin.default": lambda t: A.asin.default(t["unit"]),
    "aten.acos.default": lambda t: A.acos.default(t["unit"]),
    "aten.atan.default": lambda t: A.atan.default(t["x"]),
    "aten.sinh.default": lambda t: A.sinh.default(t["x"]),
    "aten.cosh.default": lambda t: A.cosh.default(t["x"]),
    "aten.tanh.default": lambda t: A.tanh.default(t["x"]),
    "aten.erf.default": lambda t: A.erf.default(t["x"]),
    "aten.erfc.default": lambda t: A.erfc.default(t["x"]),
    "aten.floor.default": lambda t: A.floor.default(t["x"] * 3),
    "aten.ceil.default": lambda t: A.ceil.default(t["x"] * 3),
    "aten.trunc.default": lambda t: A.trunc.default(t["x"] * 3),
    "aten.round.default": lambda t: A.round.default(t["x"] * 3),
    "aten.atan2.default": lambda t: A.atan2.default(t["x"], t["xt"]),
    "aten.sign.default": lambda t: A.sign.default(t["x"]),
    "aten.sigmoid.default": lambda t: A.sigmoid.default(t["x"] * 4),
    "aten.silu.default": lambda t: A.silu.default(t["x"] * 4),
    "aten.mish.default": lambda t: A.mish.default(t["x"] * 4),
    "aten.gelu.default": lambda t: A.gelu.default(t["x"] * 3) + A.gelu.default(t["xt"], approximate="tanh"),
    "aten.softplus.default": lambda t: A.softplus.default(t["x"] * 6, 2, 5),
    "aten.leaky_relu.default": lambda t: A.leaky_relu.default(t["x"], 0.07),
    "aten.hardsigmoid.default": lambda t: A.hardsigmoid.default(t["x"] * 5),
    "aten.hardswish.default": lambda t: A.hardswish.default(t["x"] * 5),
    "aten.elu.default": lambda t: A.elu.default(t["x"], 0.8, 1.2, 0.9),
    "aten.selu.default": lambda t: A.selu.default(t["x"]),
    "aten.celu.default": lambda t: A.celu.default(t["x"], 1.5),
    "aten.threshold.default": lambda t: A.threshold.default(t["x"], 0.1, -2.0),
    "aten.eq.Tensor": lambda t: A.eq.Tensor(t["i"], t["j"]),
    "aten.eq.Scalar": lambda t: A.eq.Scalar(t["i"], 2),
    "aten.ne.Tensor": lambda t: A.ne.Tensor(t["i"], t["j"]),
    "aten.ne.Scalar": lambda t: A.ne.Scalar(t["x"], 0.0),
    "aten.lt.Tensor": lambda t: A.lt.Tensor(t["x"], t["yb"]),
    "aten.lt.Scalar": lambda t: A.lt.Scalar(t["x"], 0.2),
    "aten.le.Tensor": lambda t: A.le.Tensor(t["i"], t["j"]),
    "aten.le.Scalar": lambda t: A.le.Scalar(t["i"], 1.5),
    "aten.gt.Tensor": lambda t: A.gt.Tensor(t["x"], t["xt"]),
    "aten.gt.Scalar": lambda t: A.gt.Scalar(t["x"], -0.1),
    "aten.ge.Tensor": lambda t: A.ge.Tensor(t["i"], t["x"]),
    "aten.ge.Scalar": lambda t: A.ge.Scalar(t["x"], 0),
    "aten.logical_not.default": lambda t: A.logical_not.default(t["i"]),
    "aten.logical_and.default": lambda t: A.logical_and.default(t["x"] > 0, t["i"]),
    "aten.logical_or.default": lambda t: A.logical_or.default(t["x"] > 0.5, t["xt"] < -0.5),
    "aten.logical_xor.default": lambda t: A.logical_xor.default(t["x"] > 0, t["xt"] > 0),
    "aten.isnan.default": lambda t: A.isnan.default(A.log.default(t["x"])),
    "aten.where.self": lambda t: A.where.self(t["x"] > 0, t["x"], t["yb"]),
    "aten.where.ScalarOther": lambda t: A.where.ScalarOther(t["x"] > 0, t["x"], 0.1),
    "aten.where.ScalarSelf": lambda t: A.where.ScalarSelf(t["x"] > 0, -1.0, t["xt"]),
    "aten.where.Scalar": lambda t: A.where.Scalar(t["x"] > 0, 2.0, 3.0),
    "aten.masked_fill.Scalar": lambda t: A.masked_fill.Scalar(t["x"], t["xt"] > 0.5, float("-inf")),
    "aten.masked_fill.Tensor": lambda t: A.masked_fill.Tensor(t["xt"], t["x"] < 0, torch.tensor(-2.5)),
    "aten.clone.default": lambda t: A.clone.default(t["xt"]),
    "aten._to_copy.default": lambda t: A._to_copy.default(t["x"] * 10, dtype=torch.int64)
    + A._to_copy.default(t["i"], dtype=torch.float64).to(torch.int64),
}


class Zoo(torch.nn.Module):
    def forward(self, x, xt, yb, i, j):
        t = {"x": x, "xt": xt, "yb": yb, "i": i, "j": j,
             "pos": x.abs() + 0.1, "unit": torch.tanh(x) * 0.9}
        return tuple(fn(t) for fn in CASES.values())


def zoo_inputs(seed: int, device="cpu"):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(5, 7, 9, generator=g)
    xt = torch.randn(9, 7, 5, generator=g).transpose(0, 2)       # non-contiguous
    yb = torch.randn(7, 1, generator=g) + 2.0                      # broadcasts, away from 0
    i = torch.randint(-5, 6, (5, 7, 9), generator=g)
    j = torch.randint(-5, 6, (5, 7, 9), generator=g)
    return [t.to(device) for t in (x, xt, yb, i, j)]
