import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import torch

from fuseforge.build import prepare_environment

prepare_environment()


def pytest_configure(config):
    """The session's C++ compiler: tests/pch_cxx.py, which compiles the host runtime's headers once
    instead of in every extension (about 12 s of each build on two cores). Only with g++ (its .gch
    files): the CXX already set (the device image sets one) or c++, which the wrapper then runs;
    FUSEFORGE_TEST_PCH=0 leaves the compiler alone."""
    cxx = os.environ.get("CXX", "")
    if os.environ.get("FUSEFORGE_TEST_PCH") == "0" or sys.platform != "linux":
        return
    wrapper = Path(__file__).with_name("pch_cxx.py")
    if not os.access(wrapper, os.X_OK) or Path(cxx).name == wrapper.name:
        return
    try:
        version = subprocess.run([cxx or "c++", "--version"], capture_output=True, text=True).stdout
    except OSError:
        return
    if "Free Software Foundation" not in version:   # (clang reads precompiled headers otherwise)
        return
    # the compiler's path is in each extension's build file, and a new one rebuilds it: the wrapper
    # keeps one path; its headers go to a folder of this session's own (never stale)
    folder = Path(tempfile.mkdtemp(prefix="ff_pch_"))
    config._ff_pch_env = {name: os.environ.get(name) for name in ("CXX", "FF_PCH_DIR", "FF_PCH_CXX")}
    os.environ.update(CXX=str(wrapper), FF_PCH_DIR=str(folder))   # (it runs FF_PCH_CXX, or c++, itself)
    if cxx:
        os.environ["FF_PCH_CXX"] = cxx
    config._ff_pch_folder = folder


def pytest_unconfigure(config):
    folder = getattr(config, "_ff_pch_folder", None)
    if folder is not None:
        shutil.rmtree(folder, ignore_errors=True)   # (each precompiled header is about 400 MB)
        for name, value in config._ff_pch_env.items():   # (as they were: a CXX the caller set stays)
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def pytest_collection_modifyitems(config, items):
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU (run `make gpu-test` on one)")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)
