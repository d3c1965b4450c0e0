"""`filegate parse | profile | validate`: the engine without Airflow; broken input → one line on stderr, exit ≠ 0."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from filegate import sample_files as generate
from filegate.cli import main


def test_parse_prints_text_exactly_as_written(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "f.csv"
    path.write_bytes(b'id,note,price\r\n007,"say ""hi""\nthere", 19.90\r\n')
    assert main(["parse", str(path), "--output", "json"]) == 0
    assert json.loads(capsys.readouterr().out) == [{"id": "007", "note": 'say "hi"\nthere', "price": " 19.90"}]


def test_parse_with_a_feed_uses_its_format(samples: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["parse", str(samples / "trains" / "trains_20261120_0800.txt"), "--feed", "trains"]) == 0
    records = json.loads(capsys.readouterr().out)
    assert len(records) == 119 and set(records[0]) == {"train_id", "event", "location", "planned", "actual",
                                                       "platform", "delay_min", "status"}


def test_profile_prints_the_summary_json(samples: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["profile", str(samples / "uploads" / "survey_cp1252.csv")]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["rows"]["total"] == 4
    assert summary["inferred_schema"]["likes_product"] == {"type": "bool", "nullable": True}
    assert summary["columns"]["answered_on"]["min"] == "2026-11-01"


def test_validate_reports_and_exits_non_zero_on_failure(samples: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", str(samples / "shipments" / "shipments_2026-11-20.json"), "--feed", "shipments"]) == 0
    report = capsys.readouterr().out
    assert "PASSED" in report and "shipped_after_ordered" in report
    assert main(["validate", str(samples / "stock_levels" / "stock_2026-11-20_unsorted.tsv"),
                 "--feed", "stock_levels"]) == 1
    assert "FAILED (quarantined)" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("content", "message"),
    [(generate.binary_garbage(), "looks binary"), (generate.zip_bomb(32), "decompression bomb"),
     (b"", "empty"), (generate.unterminated_quote(), "never closed")],
)
def test_broken_input_is_one_line_on_stderr(tmp_path: Path, content: bytes, message: str,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "bad.csv"
    path.write_bytes(content)
    for command in (["profile", str(path)], ["validate", str(path), "--feed", "uploads"]):
        assert main(command) != 0, command
        out = capsys.readouterr()
        assert message in out.err + out.out, (command, out.err)
    # The installed command, as a person runs it: no traceback, ever.
    done = subprocess.run([sys.executable, "-m", "filegate.cli", "parse", str(path)], capture_output=True, text=True,
                          check=False)
    assert done.returncode != 0
    assert "Traceback" not in done.stderr and message in done.stderr


def test_missing_file_and_unknown_feed(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["parse", str(tmp_path / "nope.csv")]) == 1
    assert "No such file" in capsys.readouterr().err
    assert main(["validate", str(tmp_path / "nope.csv"), "--feed", "no_such_feed"]) == 1
    assert "unknown feed 'no_such_feed'" in capsys.readouterr().err


def test_status_uses_the_local_stack_env_file_only_for_unset_variables(tmp_path: Path, monkeypatch,
                                                                       capsys: pytest.CaptureFixture[str]) -> None:
    """After `make run`, `filegate status` finds the stack without `source .filegate/stack.env`; the library's
    settings never read that file, and the command leaves the environment as it found it."""
    import os

    (tmp_path / "stack.env").write_text("export FILEGATE_DB_URL='postgresql://u@127.0.0.1:1/none?connect_timeout=1'\n"
                                        "export FILEGATE_BUCKET=from-file\n")
    monkeypatch.setenv("FILEGATE_HOME", str(tmp_path))
    monkeypatch.delenv("FILEGATE_DB_URL", raising=False)
    monkeypatch.setenv("FILEGATE_BUCKET", "from-env")
    assert main(["status"]) == 1  # it tried the file's database (nothing listens on port 1)
    assert "cannot connect to Postgres with the DSN from FILEGATE_DB_URL" in capsys.readouterr().err
    assert "FILEGATE_DB_URL" not in os.environ and os.environ["FILEGATE_BUCKET"] == "from-env"
