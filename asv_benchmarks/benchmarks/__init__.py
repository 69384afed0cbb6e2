"""asv benchmarks of fastsoftmax: one module per function family.

``common`` holds the data (input cases, dtypes, thread counts, how each
function is called) and the one benchmark class the families share.
"""
