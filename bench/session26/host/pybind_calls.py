"""pybind call costs on the CPU (no GPU): two lists of tensors converted each call against the inputs as
arguments and the state bound once (a pybind class holding the vector), and a list returned against a tensor.
Run: python bench/session26/host/pybind_calls.py (builds a small C++ extension)."""
import time, statistics, torch
from torch.utils.cpp_extension import load_inline
src = r"""
#include <torch/extension.h>
struct State { std::vector<at::Tensor> t; };
int64_t lists(const std::vector<at::Tensor>& a, const std::vector<at::Tensor>& b) { return a.size() + b.size(); }
int64_t handle(const at::Tensor& x, const State& s) { return s.t.size(); }
int64_t handle_list(const std::vector<at::Tensor>& a, const State& s) { return s.t.size(); }
std::vector<at::Tensor> ret_list(const at::Tensor& x) { return {x}; }
at::Tensor ret_one(const at::Tensor& x) { return x; }
int64_t nothing() { return 0; }
PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  pybind11::class_<State>(m, "State").def(pybind11::init([](std::vector<at::Tensor> t) { return State{std::move(t)}; }));
  m.def("lists", &lists); m.def("handle", &handle); m.def("handle_list", &handle_list);
  m.def("ret_list", &ret_list); m.def("ret_one", &ret_one); m.def("nothing", &nothing);
}
"""
ext = load_inline("mb_calls", cpp_sources=[src], extra_cflags=["-O2"])
def med(fn, n=20000):
    ts = []
    for _ in range(n):
        t = time.perf_counter(); fn(); ts.append(time.perf_counter() - t)
    return statistics.median(ts) * 1e9
x = torch.randn(4)
for n in (3, 30):
    params = [torch.nn.Parameter(torch.randn(4)) for _ in range(n)]
    s = ext.State(params)
    print(f"state of {n}: lists([x], state) {med(lambda: ext.lists([x], params)):.0f} ns, handle(x, State) {med(lambda: ext.handle(x, s)):.0f} ns, "
          f"handle_list([x], State) {med(lambda: ext.handle_list([x], s)):.0f} ns")
print(f"nothing() {med(ext.nothing):.0f} ns, ret_list(x)[0] {med(lambda: ext.ret_list(x)[0]):.0f} ns, ret_one(x) {med(lambda: ext.ret_one(x)):.0f} ns")
