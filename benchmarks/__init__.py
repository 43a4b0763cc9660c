"""Benchmarks of the bridge against MXNet's own dispatch, the C floor and direct TVM calls."""
