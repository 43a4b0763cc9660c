"""Un-built TVM code (a PrimFunc or IRModule): its buffers' accesses, a shape interpreter for
its outputs, their allocation, and the front end that builds and wraps it.
"""
