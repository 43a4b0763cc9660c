"""Dynamic layer, parent side: run dynamic_child in a subprocess and turn its lines into facts.

A crash, a timeout or garbage output of the child becomes `DynamicFacts.error`; this module
never raises because of the child.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
from typing import Any

from abi_checks.facts import DynamicFacts, GpuCheck, SelfTest

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT_S = 120.0


def _child_env() -> dict[str, str]:
    # The child must import abi_checks even when it is not installed (run from a checkout);
    # appending keeps the user's own sys.path order, so mxnet/tvm resolve as they would.
    env = dict(os.environ)
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    parts = [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    if root not in parts:
        parts.append(root)
    env["PYTHONPATH"] = os.pathsep.join(parts)
    return env


def _describe_exit(code: int) -> str:
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exited with status {code}"


def parse_child_output(stdout: str) -> tuple[dict[str, dict[str, Any]], str | None]:
    """Stage records by name, and the stage that began without a result (if any)."""
    records: dict[str, dict[str, Any]] = {}
    running: str | None = None
    for line in stdout.splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue  # a library printed to stdout; not ours
        if not isinstance(record, dict) or "stage" not in record:
            continue
        if record["stage"] == "begin":
            running = str(record.get("name"))
            continue
        records[str(record["stage"])] = record
        if record["stage"] == running:
            running = None
    return records, running


def run_child(timeout_s: float = DEFAULT_TIMEOUT_S) -> DynamicFacts:
    """Run `python -m abi_checks.dynamic_child` and collect what it saw."""
    cmd = [sys.executable, "-m", "abi_checks.dynamic_child"]
    try:
        proc = subprocess.run(
            cmd, capture_output=True, text=True, timeout=timeout_s, env=_child_env(), check=False
        )
        stdout, stderr, code = proc.stdout, proc.stderr, proc.returncode
        timed_out = False
    except subprocess.TimeoutExpired as exc:
        stdout = exc.stdout.decode() if isinstance(exc.stdout, bytes) else (exc.stdout or "")
        stderr = exc.stderr.decode() if isinstance(exc.stderr, bytes) else (exc.stderr or "")
        code, timed_out = -1, True
    except OSError as exc:
        return DynamicFacts(ran=False, error=f"could not start the probe child: {exc}")
    records, running = parse_child_output(stdout)
    facts = facts_from_records(records)
    where = f" during stage '{running}'" if running else ""
    if timed_out:
        facts.error = f"probe child timed out after {timeout_s:g} s{where}"
    elif code != 0 or "done" not in records:
        tail = stderr.strip().splitlines()[-1:] or [""]
        facts.error = f"probe child {_describe_exit(code)}{where}: {tail[0]}".rstrip(": ")
    if facts.error:
        log.warning("%s", facts.error)
    return facts


def _selftest(record: dict[str, Any] | None, what: str) -> SelfTest:
    if record is None:
        return SelfTest(None, f"{what} did not run")
    if not record.get("ok"):
        return SelfTest(None, f"{what} could not run: {record.get('error')}")
    problems = record.get("problems") or []
    if record.get("ok_layout"):
        return SelfTest(True, f"{what} passed")
    return SelfTest(False, f"{what} failed: " + "; ".join(problems))


def facts_from_records(records: dict[str, dict[str, Any]]) -> DynamicFacts:
    """Assemble DynamicFacts from the child's stage records (missing stages stay 'not run')."""
    facts = DynamicFacts(ran=bool(records), stages_completed=[k for k in records if k != "done"])
    mx = records.get("mxnet", {})
    if mx.get("ok"):
        facts.mxnet_version = mx.get("version")
        facts.mxnet_version_code = mx.get("version_code")
        facts.mxnet_lib_path = mx.get("lib_path")
        facts.mxnet_features = dict(mx.get("features") or {})
    elif mx:
        facts.mxnet_error = mx.get("error")
    facts.dlpack_layout = _selftest(records.get("dlpack"), "DLPack layout self-test")
    facts.view_identity = _selftest(records.get("view_identity"), "view identity self-test")
    throw = records.get("throw_symbol")
    if throw and throw.get("ok"):
        found = bool(throw.get("available"))
        facts.throw_symbol = SelfTest(
            found,
            ("resolvable" if found else "not resolvable")
            + f" through {throw.get('library')}'s dependency tree",
        )
    elif throw:
        facts.throw_symbol = SelfTest(None, f"lookup failed: {throw.get('error')}")
    for name in ("tvm_ffi", "tvm"):
        rec = records.get(name, {})
        if rec.get("ok"):
            setattr(facts, f"{name}_version", rec.get("version"))
        elif rec:
            setattr(facts, f"{name}_error", rec.get("error"))
    bridge = records.get("bridge", {})
    if bridge.get("ok"):
        facts.bridge_available = bool(bridge.get("available"))
        facts.bridge_detail = str(bridge.get("detail"))
        for name in ("run_context_layout", "view_identity"):
            sub = bridge.get(name)
            if isinstance(sub, dict):
                label = f"bridge_cffi.mxnet.selftests.{name}"
                test = SelfTest(sub.get("ok"), f"{label}: {sub.get('detail')}")
                setattr(facts, f"bridge_{name}", test)
            elif not facts.bridge_available:
                setattr(facts, f"bridge_{name}", SelfTest(None, facts.bridge_detail))
        facts.bridge_error_mode = bridge.get("error_mode")
        gpu = bridge.get("gpu")
        if isinstance(gpu, dict):
            facts.gpu = GpuCheck(str(gpu.get("status")), str(gpu.get("detail")))
        elif not facts.bridge_available:
            facts.gpu = GpuCheck("not run", facts.bridge_detail)
        facts.bridge_import_error = bridge.get("import_error")
    elif bridge:
        facts.bridge_import_error = str(bridge.get("error"))
        facts.bridge_detail = f"import bridge_cffi failed: {facts.bridge_import_error}"
    last = records.get("done") or records.get("tvm") or records.get("tvm_ffi") or mx
    facts.mapped_libraries = list((last or {}).get("mapped") or [])
    return facts
