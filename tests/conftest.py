import pytest
import torch

from fuseforge.build import prepare_environment

prepare_environment()


def pytest_collection_modifyitems(config, items):
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU (run `make gpu-test` on one)")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)
