"""Per-output errors of the generated convolution (FUSEFORGE_CONV=all) on tests/test_conv_kernel's
ConvZoo, on the GPU: ours against float64 of the TF32-rounded operands, and ours and eager (NCHW,
channels-last) against float64 of the float32 operands. Run from the repo root with PYTHONPATH=src."""
import copy
import os
import sys

import torch

sys.path.insert(0, ".")
os.environ["FUSEFORGE_CONV"] = "all"
from tests.test_conv_kernel import ConvZoo, inputs, rounded_reference  # noqa: E402
from tests.test_layout import _channels_last  # noqa: E402
import fuseforge  # noqa: E402

torch.manual_seed(0)
model = ConvZoo()
fast = fuseforge.compile(model, inputs(0)).cuda()
model = model.cuda()
for seed in (1, 2):
    x = inputs(seed, "cuda")
    with torch.no_grad():
        got, ref = fast(*x), model(*x)
        cl = copy.deepcopy(model)
        for p in cl.parameters():
            p.data = _channels_last(p.data)
        ref_cl = cl(*[_channels_last(t) for t in x])
        exact = copy.deepcopy(model).double()(*[t.double() for t in x])
    rounded = rounded_reference(model.cpu(), [t.cpu() for t in x])
    model.cuda()
    for i, (a, b, c, e, r) in enumerate(zip(got, ref, ref_cl, exact, rounded)):
        m = float(e.abs().max())
        err = lambda t, w: float((t.double() - w.to(t.device)).abs().max()) / m
        print(f"seed {seed} out {i}: ours-rounded {err(a, r):.2e}  ours {err(a, e):.2e}  "
              f"eager nchw {err(b, e):.2e}  eager cl {err(c, e):.2e}  strides {a.stride()} {b.stride()}")
