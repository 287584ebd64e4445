"""SwimSearch engine: find similar designs in an image catalogue.

This package never imports Qt; the desktop widgets live in `ui/`.
"""

import os

# NumPy's OpenBLAS threads busy-wait after every matrix product; on a 2-core
# machine they halve the speed of the ONNX trunk that runs next (a query took
# 56 ms instead of 31 ms). The engine's products are small, so one BLAS thread
# costs nothing. It only takes effect when NumPy is not loaded yet, which is
# the case for the app, the CLI and the benchmarks; set the variable yourself
# to override it.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

__version__ = "0.1.0"
