"""tests/pch_cxx.py, the test session's compiler wrapper: the prelude it precompiles is the generated
main.cpp's leading #include block at #if depth 0, the object it compiles with the precompiled header
is byte for byte the one without, and a prelude that does not compile leaves the compile as it was;
conftest puts it in front of a CXX already set (the device image sets one), which it then runs."""
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from . import conftest, pch_cxx

pytestmark = pytest.mark.skipif(shutil.which("c++") is None, reason="needs a C++ compiler")

MAIN = """
// ---- fuseforge host runtime: test
#include <vector>
#ifdef FF_SOMETHING
#include <map>
#define FF_X 1
#else
#define FF_X 0
#endif
#include <string>
#ifdef FF_WITH_CUDA
int cuda_only();
#endif
int f() { return static_cast<int>(std::vector<std::string>(3).size()) + FF_X; }
"""


def test_prelude_is_the_leading_includes():
    head = pch_cxx.prelude(MAIN)
    assert head.rstrip().endswith("#include <string>") and "cuda_only" not in head and "#else" in head
    assert pch_cxx.prelude("#include <vector>\nint f();\n") == ""   # (not a generated runtime)


def test_same_object_with_and_without(tmp_path, monkeypatch):
    monkeypatch.setenv("FF_PCH_DIR", str(tmp_path / "pch"))
    src = tmp_path / "main.cpp"
    src.write_text(MAIN)
    plain = ["-O2", "-fPIC", "-c", str(src), "-o", str(tmp_path / "plain.o")]
    subprocess.run(["c++", *plain], check=True)
    args = pch_cxx.with_pch("c++", ["-O2", "-fPIC", "-c", str(src), "-o", str(tmp_path / "pch.o")])
    assert args[:2] == ["-include", str(next((tmp_path / "pch").glob("*/prelude.h")))]
    assert next((tmp_path / "pch").glob("*/prelude.h.gch")).stat().st_size > 0
    subprocess.run(["c++", "-Werror", *args], check=True)   # (-Winvalid-pch: a header g++ passes over fails)
    assert (tmp_path / "pch.o").read_bytes() == (tmp_path / "plain.o").read_bytes()


def test_a_prelude_that_fails_is_left_out(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("FF_PCH_DIR", str(tmp_path / "pch"))
    src = tmp_path / "main.cpp"
    src.write_text("// ---- fuseforge host runtime\n#include <no_such_header_here.h>\nint f();\n")
    args = ["-c", str(src), "-o", str(tmp_path / "m.o")]
    assert pch_cxx.with_pch("c++", list(args)) == args
    assert "no precompiled header" in capsys.readouterr().err
    assert pch_cxx.with_pch("c++", list(args)) == args and capsys.readouterr().err == ""   # tried once


def test_wraps_a_compiler_already_set(monkeypatch):
    gxx = shutil.which("g++")
    if gxx is None or "Free Software Foundation" not in subprocess.run([gxx, "--version"], capture_output=True,
                                                                       text=True).stdout:
        pytest.skip("needs g++")
    monkeypatch.delenv("FUSEFORGE_TEST_PCH", raising=False)
    monkeypatch.delenv("FF_PCH_CXX", raising=False)
    monkeypatch.setenv("CXX", gxx)

    class Config:
        pass

    config = Config()
    conftest.pytest_configure(config)
    try:
        assert Path(os.environ["CXX"]).name == "pch_cxx.py" and os.environ["FF_PCH_CXX"] == gxx
        assert Path(os.environ["FF_PCH_DIR"]).is_dir()
        again = Config()
        conftest.pytest_configure(again)   # the wrapper as CXX: not wrapped twice
        assert not hasattr(again, "_ff_pch_folder") and os.environ["FF_PCH_CXX"] == gxx
    finally:
        conftest.pytest_unconfigure(config)
    assert os.environ["CXX"] == gxx and "FF_PCH_CXX" not in os.environ
