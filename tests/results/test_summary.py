"""Where a study's trial folders and report are found: as recorded, or under the journal's
folder when the out folder was moved or copied."""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from nas_prune.results.summary import relocate, report_dir


def test_a_moved_out_folder_is_found_under_the_journal(tmp_path: Path) -> None:
    new = tmp_path / "moved"
    (new / "s" / "trials" / "00001").mkdir(parents=True)
    info = {"out": "/gone/out", "study_dir": "/gone/out/s"}
    df = pd.DataFrame({"out_dir": ["/gone/out/s/trials/00001", "/gone/out/s/trials/00002",
                                   "/elsewhere/x", None]})
    got = relocate(df, info, str(new / "study.journal"))["out_dir"].tolist()
    assert got[0] == str(new / "s" / "trials" / "00001")  # found in the copy
    assert got[1:3] == ["/gone/out/s/trials/00002", "/elsewhere/x"]  # not there: as recorded
    assert report_dir(info, "s", str(new / "study.journal")) == new / "s" / "report"


def test_paths_that_exist_and_server_storages_are_left_alone(tmp_path: Path) -> None:
    (tmp_path / "s" / "trials" / "00001").mkdir(parents=True)
    info = {"out": str(tmp_path), "study_dir": str(tmp_path / "s")}
    df = pd.DataFrame({"out_dir": [str(tmp_path / "s" / "trials" / "00001")]})
    assert relocate(df, info, str(tmp_path / "study.journal")).equals(df)
    assert report_dir(info, "s", "postgresql://h/db") == tmp_path / "s" / "report"
    # a study of nas_prune 0.1.0 (no study folder): out/report
    assert report_dir({"out": str(tmp_path)}, "s", "postgresql://h/db") == tmp_path / "report"
    assert report_dir({}, "s", "postgresql://h/db") == Path("runs") / "s" / "report"
