"""What this build and this machine run: ``get_config()`` / ``show_config()``."""

import platform

from . import _runtime


def get_config():
    """Return the build and run-time configuration as a dict.

    Keys: ``backend`` ("compiled" or "numpy"), ``simd`` (the path in use:
    "scalar", "avx2" or "avx512"; "none" without the compiled backend),
    ``simd_available`` (the best this CPU and build can run), ``openmp``
    (bool), ``default_num_threads``, ``compiler``,
    ``compile_flags``, ``serial_threshold``, ``machine``.

    Examples
    --------
    >>> import fastsoftmax as fs
    >>> sorted(fs.get_config())[:3]
    ['backend', 'compile_flags', 'compiler']
    """
    k = _runtime.kernels
    compiled = k is not None
    available = _runtime.available_simd()
    return {
        "backend": _runtime.BACKEND,
        "simd": _runtime.current_simd(),
        "simd_available": available[-1] if available else "none",
        "openmp": bool(compiled and k.OPENMP),
        "default_num_threads": _runtime.default_num_threads(),
        "compiler": k.compiler() if compiled else None,
        "compile_flags": k.BUILD_FLAGS if compiled else None,
        "serial_threshold": _runtime.SERIAL_THRESHOLD,
        "machine": platform.machine(),
    }


def show_config():
    """Print :func:`get_config` as aligned ``key: value`` lines.

    Examples
    --------
    >>> import fastsoftmax as fs
    >>> fs.show_config()  # doctest: +ELLIPSIS
    backend ...
    """
    cfg = get_config()
    width = max(map(len, cfg))
    for key, value in cfg.items():
        print(f"{key:<{width}} : {value}")
