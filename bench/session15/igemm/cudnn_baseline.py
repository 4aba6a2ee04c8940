"""The cuDNN side of igemm.cu's comparison, on the same GPU: the bundled example's convolution
alone (channels-last input and weight, TF32 as PyTorch allows by default), the input's conversion,
and the whole model in eager and torch.compile. Median of 25 calls, L2 flushed, CUDA events."""
import sys
import torch

sys.path.insert(0, "examples")
from conv2d_min_add_mul import Model, get_init_inputs, get_inputs  # noqa: E402

flush = torch.empty(128 << 20, dtype=torch.uint8, device="cuda")


def timed(f, n=25):
    f()
    torch.cuda.synchronize()
    ts = []
    for _ in range(n):
        flush.random_()
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        a.record(); f(); b.record(); b.synchronize()
        ts.append(a.elapsed_time(b))
    return sorted(ts)[len(ts) // 2]


torch.manual_seed(0)
model = Model(*get_init_inputs()).cuda()
x = get_inputs()[0].cuda()
conv = model.conv
w_cl = conv.weight.detach().contiguous(memory_format=torch.channels_last)
x_cl = x.contiguous(memory_format=torch.channels_last)
with torch.no_grad():
    rows = {
        "conv alone, channels-last (cuDNN)": timed(lambda: torch.conv2d(x_cl, w_cl, conv.bias)),
        "conv alone, NCHW (cuDNN)": timed(lambda: conv(x)),
        "input to channels-last (ATen copy)": timed(lambda: x.contiguous(memory_format=torch.channels_last)),
        "eager model": timed(lambda: model(x)),
    }
    compiled = torch.compile(model)
    compiled(x)
    rows["torch.compile model"] = timed(lambda: compiled(x))
print(torch.cuda.get_device_name(), torch.__version__)
for k, v in rows.items():
    print(f"| {k} | {v:.3f} |")
