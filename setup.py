"""setuptools needs setup.py only to pass cffi_modules; everything else is in pyproject.toml."""

from setuptools import setup

setup(cffi_modules=["bridge_cffi/_build_native.py:ffibuilder"])
