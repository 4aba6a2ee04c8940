"""abx/prof/level2_030_...py: level2/030's generated file (FUSEFORGE_DIRECT_CALL=1, abx/dc) with timing
points in ff::replayed and probe functions in its extension, for prof_probe.py (run from the repo root
after `bash bench/session26/device.sh prep`; the timings are in prof030_call4.log)."""
import re
from pathlib import Path

src = next(Path("abx/dc").glob("level2_030*.py"))
s = src.read_text()
s = s.replace("#include <vector>\n", "#include <vector>\n#include <chrono>\n"
              "namespace ff { inline double tsum[8] = {0}; inline int64_t tcalls = 0;\n"
              "inline int64_t tnow() { return std::chrono::steady_clock::now().time_since_epoch().count(); } }\n", 1)
edits = [
    ("  if (inputs.empty() || !inputs[0].is_cuda()) return ops(inputs, state);\n",
     "  const int64_t t0 = tnow();\n  if (inputs.empty() || !inputs[0].is_cuda()) return ops(inputs, state);\n"),
    ("  c10::cuda::CUDAGuard guard(inputs[0].device());\n  const auto replay = [&](Captured& c) {\n"
     "    launch(c, inputs[0].device().index());\n    ++r.replays;\n"
     "    for (size_t i : updated) state[i].unsafeGetTensorImpl()->bump_version();\n    return handed_out(c.outputs);\n",
     "  const int64_t t1 = tnow();\n  c10::cuda::CUDAGuard guard(inputs[0].device());\n  const int64_t t2 = tnow();\n"
     "  const auto replay = [&](Captured& c) {\n    const int64_t t3 = tnow();\n    launch(c, inputs[0].device().index());\n"
     "    const int64_t t4 = tnow();\n    ++r.replays;\n"
     "    for (size_t i : updated) state[i].unsafeGetTensorImpl()->bump_version();\n"
     "    auto res = handed_out(c.outputs);\n    const int64_t t5 = tnow();\n"
     "    tsum[0] += t1 - t0; tsum[1] += t2 - t1; tsum[2] += t3 - t2; tsum[3] += t4 - t3; tsum[4] += t5 - t4; ++tcalls;\n"
     "    return res;\n"),
    ('  m.def("forward", &forward, "the generated forward");\n',
     '  m.def("forward", &forward, "the generated forward");\n'
     '  m.def("tnow", []() { return ff::tnow(); });\n'
     '  m.def("noop_tensors", [](const std::vector<at::Tensor>& a, const std::vector<at::Tensor>& b) { return ff::tnow(); });\n'
     '  m.def("ret_tensor", [](const std::vector<at::Tensor>& a) { return std::vector<at::Tensor>{a[0]}; });\n'
     '  m.def("fresh", [](const at::Tensor& t) { return ff::handed_out({t}); });\n'
     '  m.def("timings", []() { std::vector<double> v(ff::tsum, ff::tsum + 5); for (auto& x : v) x /= ff::tcalls; return v; });\n'
     '  m.def("reset_timings", []() { for (auto& x : ff::tsum) x = 0; ff::tcalls = 0; });\n'),
]
for old, new in edits:
    assert old in s, old
    s = s.replace(old, new)
s = re.sub(r'name="(ff_030_[a-z_0-9]*?)_([0-9a-f]{16})"', r'name="\1_prof"', s)
Path("abx/prof").mkdir(parents=True, exist_ok=True)
Path("abx/prof", src.name).write_text(s)
