"""The training example: a Gluon MLP whose Adam update is one fused TVM kernel per parameter."""

from __future__ import annotations

import runpy
from typing import Any

import mxnet as mx
import numpy as np
import pytest

from conftest import REPO

EXAMPLE = runpy.run_path(str(REPO / "examples" / "training_step.py"))


@pytest.fixture(scope="module")
def comparison() -> tuple[Any, Any]:
    """Native and bridged Adam trained for 300 steps from the same weights on the same batches."""
    compared: tuple[Any, Any] = EXAMPLE["compare"](steps=300, seed=0, update_repeats=20)
    return compared


def test_adam_kernel_updates_weight_and_moments_in_place_and_reads_the_gradient() -> None:
    kernel = EXAMPLE["adam_kernel"](2)
    assert kernel.const_loc == frozenset({1})
    assert kernel.outputs == ()
    assert [p.access for p in kernel.parameters[:4]] == ["readwrite", "read", "readwrite",
                                                         "readwrite"]


@pytest.mark.parametrize("shape", [(7,), (5, 3)])
def test_one_fused_adam_step_matches_mxnet_adam_update(shape: tuple[int, ...]) -> None:
    rng = np.random.default_rng(4)
    w, g, m = (rng.standard_normal(shape).astype("float32") for _ in range(3))
    v = np.abs(rng.standard_normal(shape)).astype("float32")
    lr, beta1, beta2, eps, wd, rescale, t = 0.01, 0.9, 0.999, 1e-8, 0.1, 0.5, 3
    ours = [mx.nd.array(a) for a in (w, g, m, v)]
    EXAMPLE["adam_kernel"](len(shape))(*ours, lr, beta1, beta2, eps, wd, rescale, float(t))
    native = [mx.nd.array(a) for a in (w, g, m, v)]
    lr_t = lr * np.sqrt(1 - beta2 ** t) / (1 - beta1 ** t)  # what mx.optimizer.Adam passes
    mx.nd.adam_update(*native, out=native[0], lr=lr_t, beta1=beta1, beta2=beta2, epsilon=eps,
                      wd=wd, rescale_grad=rescale)
    for name, a, b in zip("wgmv", ours, native, strict=True):
        np.testing.assert_allclose(a.asnumpy(), b.asnumpy(), rtol=2e-6, atol=1e-7, err_msg=name)


def test_bridged_training_reaches_the_native_final_loss(comparison: tuple[Any, Any]) -> None:
    native, ours = comparison
    assert native.final_loss < 0.2 * native.losses[0]  # it did learn
    assert ours.final_loss == pytest.approx(native.final_loss, rel=EXAMPLE["LOSS_RTOL"])


def test_bridged_and_native_loss_curves_agree_step_by_step(comparison: tuple[Any, Any]) -> None:
    native, ours = comparison
    assert ours.losses[0] == native.losses[0]  # same weights, same first batch
    np.testing.assert_allclose(ours.losses[:20], native.losses[:20], rtol=1e-5)
    np.testing.assert_allclose(ours.losses, native.losses, rtol=1e-3, atol=1e-5)


def test_training_example_script_runs_and_reports_agreement(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert EXAMPLE["main"](["--steps", "100"]) == 0
    out = capsys.readouterr().out
    assert "bridged fused TVM Adam" in out
    assert "final losses agree within rtol 0.001: True" in out
