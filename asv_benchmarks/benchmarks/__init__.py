"""asv benchmarks of fastsoftmax: one module per function family.

The data (cases, dtypes, thread counts, inputs, timing) is
``fastsoftmax._timing``'s; ``common`` holds the one benchmark class the
families share.
"""
