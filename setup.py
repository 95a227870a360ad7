"""Builds the compiled helpers of the fast curation path (`data_governance/_speedups.c`); everything
else about the package is declared in pyproject.toml. `pip install -e .` builds the extension in place,
next to its source; where it is missing, data_governance.quality and data_governance.dedup run their
numpy reference implementations instead (same results, slower)."""

import sys

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "data_governance._speedups",
            sources=["data_governance/_speedups.c"],
            extra_compile_args=[] if sys.platform == "win32" else ["-O3", "-std=c11"],
            # A failed build leaves the numpy fallback (same results, slower) instead of failing the
            # install; tests/test_speedups.py then fails, saying how to build it.
            optional=True,
        )
    ],
    # The source is the sdist's, not the wheel's: a wheel ships the built module only.
    exclude_package_data={"data_governance": ["*.c"]},
)
