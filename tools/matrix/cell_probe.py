"""The probe in a cell: `python -m abi_checks --json`, and the verdicts the matrix keeps."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

from venv_paths import without_venv_paths


def run_probe(python: str, staging: Path, env: dict[str, str], log: Path) -> dict[str, object]:
    """`python -m abi_checks --json` in the cell; keep the verdicts and what explains them."""
    started = time.monotonic()
    try:
        done = subprocess.run([python, "-m", "abi_checks", "--json"], cwd=staging, env=env,
                              capture_output=True, text=True, timeout=300, check=False)
    except subprocess.TimeoutExpired:
        return {"ran": False, "error": "probe timed out after 300 s"}
    with log.open("a") as out:
        out.write(f"\n$ python -m abi_checks --json  (exit {done.returncode})\n{done.stderr}\n")
    try:
        report = json.loads(done.stdout)
    except json.JSONDecodeError:
        return {"ran": False, "exit_code": done.returncode,
                "error": (done.stderr or done.stdout).strip()[-2000:] or "no output"}
    dynamic = report.get("dynamic") or {}
    verdicts = {v["name"]: {"status": v["status"], "reasons": v.get("reasons", []),
                            "remedy": v.get("remedy", [])} for v in report.get("verdicts", [])}
    return without_venv_paths({
        "ran": True,
        "exit_code": done.returncode,
        "seconds": round(time.monotonic() - started, 1),
        "schema_version": report.get("schema_version"),
        "verdicts": verdicts,
        "mxnet_version": dynamic.get("mxnet_version"),
        "tvm_version": dynamic.get("tvm_version"),
        "tvm_ffi_version": dynamic.get("tvm_ffi_version"),
        "tvm_error": dynamic.get("tvm_error"),
        "bridge_error_mode": dynamic.get("bridge_error_mode"),
    })
