"""Producers: what the user hands over (TVM modules of either generation, tvm-ffi functions,
protocol kernel libraries, Python callables) made into protocol kernels.
"""
