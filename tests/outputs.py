"""Comparisons of a tuple of outputs with eager's, for the op zoos' and the layout tests."""
import torch


def assert_all_close(new, ref, rtol: float, atol: float) -> None:
    """Same count, shapes and dtypes; floats within rtol/atol (NaN where eager has NaN),
    integers equal. Lists every output that differs with its max abs error."""
    assert len(new) == len(ref)
    bad = []
    for k, (a, b) in enumerate(zip(new, ref)):
        assert a.shape == b.shape and a.dtype == b.dtype, (k, a.shape, b.shape, a.dtype, b.dtype)
        ok = torch.allclose(a, b, rtol=rtol, atol=atol, equal_nan=True) if a.is_floating_point() \
            else torch.equal(a, b)
        if not ok:
            bad.append((k, float((a.double() - b.double()).abs().nan_to_num().max())))
    assert not bad, f"outputs that differ from eager (index, max abs error): {bad}"


def assert_zoo_matches(zoo, make_inputs, seed: int, rtol: float, atol: float, device: str = "cpu") -> None:
    """A zoo's compiled module against its eager model on fresh inputs `make_inputs(seed, device)`."""
    model, compiled = zoo
    if device != "cpu":
        model, compiled = model.to(device), compiled.to(device)
    assert_all_close(compiled(*make_inputs(seed, device)), model(*make_inputs(seed, device)), rtol, atol)


def assert_same_layout_and_close(new, ref, rtol: float = 1e-4, atol: float = 1e-5, names=None) -> None:
    """Same count, shapes and strides (a layout choice must not show in the results); values
    within rtol/atol. `names` labels the outputs in a failure."""
    assert len(new) == len(ref), (len(new), len(ref))
    for k, (a, b) in enumerate(zip(new, ref)):
        name = names[k] if names else k
        assert a.shape == b.shape and a.stride() == b.stride(), (name, a.shape, a.stride(), b.stride())
        torch.testing.assert_close(a, b, rtol=rtol, atol=atol, msg=lambda m, n=name: f"{n}: {m}")


def assert_compiled_matches(make_model, make_inputs, device: str, tol: float, seeds=(1, 2)) -> None:
    """fuseforge.compile of a fresh `make_model()` (built on inputs of seed 0) against an eager copy
    with the same parameters, on fresh inputs `make_inputs(device, seed)` for each seed."""
    import fuseforge
    torch.manual_seed(0)
    model, reference = make_model().to(device), make_model().to(device)
    reference.load_state_dict(model.state_dict())
    fast = fuseforge.compile(model, make_inputs(device))
    for seed in seeds:
        xs = make_inputs(device, seed)
        with torch.no_grad():
            for got, want in zip(fast(*xs), reference(*xs)):
                torch.testing.assert_close(got, want, rtol=tol, atol=tol)
