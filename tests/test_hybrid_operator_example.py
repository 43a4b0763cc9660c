"""The hybridized-operator example: a Gluon model with a registered TVM swish, trained, exported."""

from __future__ import annotations

import json
import runpy
from pathlib import Path

import numpy as np
import pytest

from conftest import REPO, needs_tvm_0_27

pytestmark = needs_tvm_0_27
EXAMPLE = runpy.run_path(str(REPO / "examples" / "hybrid_operator.py"))


def test_bridged_and_native_models_learn_the_same() -> None:
    native = EXAMPLE["train"](bridged=False, steps=40)
    bridged = EXAMPLE["train"](bridged=True, steps=40)
    assert bridged.final_loss < 0.9 * EXAMPLE["train"](bridged=True, steps=1).final_loss
    np.testing.assert_allclose(bridged.final_loss, native.final_loss, rtol=EXAMPLE["LOSS_RTOL"])


def test_main_exports_a_model_that_loads_back(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert EXAMPLE["main"](["--steps", "20", "--out", str(tmp_path)]) == 0
    printed = capsys.readouterr().out
    assert "losses agree within rtol" in printed and "differ by at most" in printed
    symbol = json.loads((tmp_path / "swish_model-symbol.json").read_text())
    ops = [node["op"] for node in symbol["nodes"]]
    assert ops.count("swish") + ops.count("Custom") == 2, ops
    assert (tmp_path / "swish_model-0000.params").is_file()
