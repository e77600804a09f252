"""pandas tables of results (``to_frame()``), with pandas imported on first use."""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd


def data_frame(rows: Iterable[Mapping[str, Any]]) -> pd.DataFrame:
    """A DataFrame with one row per mapping, columns in first-seen order."""
    import pandas as pd  # noqa: PLC0415  lazy: pandas takes about 0.4 s to import; most callers never tabulate

    return pd.DataFrame(list(rows))
