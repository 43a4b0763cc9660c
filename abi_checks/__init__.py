"""Probe whether bridge_cffi can run here: which MXNet/TVM libraries load, their ABIs, verdicts.

Command line: `python -m abi_checks` (see cli.py); in-process check: `api.bridge_blockers`;
JSON schema: SCHEMA.md. Importing this package loads no native code.
"""
