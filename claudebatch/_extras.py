"""Optional libraries, each behind the extra that installs it, and the error naming it."""

from __future__ import annotations

import importlib
from types import ModuleType

from .errors import MissingExtraError

#: import name -> (extra, distribution)
EXTRAS = {
    "pyarrow": ("parquet", "pyarrow"),
    "pyarrow.parquet": ("parquet", "pyarrow"),
    "pandas": ("pandas", "pandas"),
    "polars": ("polars", "polars"),
    "datasets": ("datasets", "datasets"),
    "fsspec": ("fsspec", "fsspec"),
}


def need(module: str, what: str) -> ModuleType:
    """Import ``module`` for ``what`` (said in the error), or raise MissingExtraError."""
    try:
        return importlib.import_module(module)
    except ImportError:
        extra, dist = EXTRAS.get(module, (None, module.split(".")[0]))
        how = f"pip install 'claudebatch[{extra}]'" if extra else f"pip install {dist}"
        raise MissingExtraError(f"{what} needs {dist}, which is not installed: {how}",
                                extra=extra or dist) from None
