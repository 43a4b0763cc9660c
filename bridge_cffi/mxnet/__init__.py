"""The MXNet engine consumer: bridged functions, their argument packing, binding MXNet's C API,
readiness and self-tests, autograd, operators, and the allocation of outputs.
"""
