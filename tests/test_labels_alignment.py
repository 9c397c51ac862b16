"""``check_aligned``: exact alignment, with a shortcut for variables sharing one index object."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from riskmodel._labels import check_aligned
from riskmodel.errors import AlignmentError


def _panel(stocks: list[str]) -> xr.Dataset:
    dates = np.array(["2020-01-02", "2020-01-03"], dtype="datetime64[ns]")
    values = np.arange(2 * len(stocks), dtype=float).reshape(2, len(stocks))
    return xr.Dataset({"returns": (("date", "stock"), values), "size": (("date", "stock"), values + 1)},
                      coords={"date": dates, "stock": stocks})


def test_variables_of_one_dataset_share_the_index_and_pass() -> None:
    panel = _panel(["A", "B", "C"])
    assert panel["returns"].xindexes["stock"] is panel["size"].xindexes["stock"]
    check_aligned(panel["returns"], panel["size"], "returns", "size", ("date", "stock"))
    check_aligned(panel["returns"], panel["size"].transpose("stock", "date"), "returns", "size", ("date", "stock"))


def test_equal_ids_from_another_dataset_pass_and_different_ones_raise() -> None:
    ref = _panel(["A", "B", "C"])["returns"]
    check_aligned(ref, _panel(["A", "B", "C"])["size"], "returns", "size", ("date", "stock"))
    with pytest.raises(AlignmentError, match="same stock ids as returns but in a different order"):
        check_aligned(ref, _panel(["C", "B", "A"])["size"], "returns", "size", ("date", "stock"))
    with pytest.raises(AlignmentError, match=r"missing \['C'\], extra \['D'\]"):
        check_aligned(ref, _panel(["A", "B", "D"])["size"], "returns", "size", ("date", "stock"))
