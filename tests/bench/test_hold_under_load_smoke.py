"""The hold-under-load benchmark runs end to end at a tiny size (``make bench`` measures)."""

import json
from pathlib import Path

from benchmarks import hold_under_load


def test_hold_under_load_smoke(tmp_path: Path) -> None:
    hold_under_load.run(tmp_path, hold_under_load.QUICK)
    document = json.loads((tmp_path / "hold_under_load.json").read_text())
    assert document["markdown"].strip() in (tmp_path / "RESULTS.md").read_text()
    assert document["machine"]["cores"] >= 1
    for phase in ("burst", "drain"):
        result = document[phase]
        assert (result["lost"], result["converged"]) == (0, True)
        census = result["archive"]
        assert census["records"] == census["distinct_events"] > 0, "each event archived once"
    assert document["floor_fresh"]["n"] == hold_under_load.QUICK["rounds"]
