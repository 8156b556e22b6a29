"""Loader: every non-blank line is loaded, quarantined (with file, line, reason) or counted as a duplicate."""

from __future__ import annotations

import gzip
import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from churnflow.cli import app
from churnflow.config import DataConfig
from churnflow.data.discover import discover_files
from churnflow.data.errors import EventValidationError, TooManyBadLinesError
from churnflow.data.load import load_events
from churnflow.data.records import normalize_records
from churnflow.data.schema import EVENT_COLUMNS, EVENT_DTYPES, RAW_KEYS
from churnflow.data.table import read_events

TS0 = 1_538_352_000_000  # 2018-10-01 UTC


def event(user: str = "7", ts: int = TS0, page: str = "NextSong", item: int = 0, **kw: Any) -> dict[str, Any]:
    """A valid raw Sparkify event (all 18 keys)."""
    base: dict[str, Any] = {
        "artist": "A" if page == "NextSong" else None,
        "auth": "Logged In" if user else "Logged Out",
        "firstName": "Ann" if user else None,
        "gender": "F" if user else None,
        "itemInSession": item,
        "lastName": "Lee" if user else None,
        "length": 200.5 if page == "NextSong" else None,
        "level": "paid",
        "location": "Here, CA" if user else None,
        "method": "PUT",
        "page": page,
        "registration": float(TS0 - 86_400_000) if user else None,
        "sessionId": 3,
        "song": "S" if page == "NextSong" else None,
        "status": 200,
        "ts": ts,
        "userAgent": "UA" if user else None,
        "userId": user,
    }
    base.update(kw)
    return base


def line(record: dict[str, Any]) -> str:
    return json.dumps(record, separators=(",", ":"))


def cfg(**kw: Any) -> DataConfig:
    return DataConfig(max_bad_line_share=1.0, **kw)


def messy_lines() -> tuple[list[str], dict[int, str]]:
    """Lines of one messy file and the expected quarantine reason per (1-based) line number."""
    good = [event(ts=TS0 + i * 1000, item=i) for i in range(6)]
    lines = [
        line(good[0]),  # 1
        "",  # 2 blank
        line(good[1]),  # 3
        "{not json",  # 4
        line({k: v for k, v in good[2].items() if k != "sessionId"}),  # 5 missing key
        line(event(ts="1538352000000")),  # 6 ts as a string
        line(event(userId=7)),  # 7 number for a string (Polars would coerce)
        line(event(ts=TS0 + 0.5)),  # 8 fraction in an integer field
        line(event(ts=5)),  # 9 impossible timestamp
        line(event(auth="Hacker")),  # 10 value outside the allowed set
        line(good[1]),  # 11 exact duplicate of line 3
        "   ",  # 12 blank
        line(event(page="Brand New Page", ts=TS0 + 99_000)),  # 13 unknown page: kept
        line(event(user="", page="Home", ts=TS0 + 5)),  # 14 anonymous
        "[1, 2]",  # 15 not an object
        line(event(status=True)),  # 16 boolean for an integer
        line(good[3]),  # 17
    ]
    expected = {
        4: "invalid_json",
        5: "missing:sessionId",
        6: "wrong_type:ts",
        7: "wrong_type:userId",
        8: "wrong_type:ts",
        9: "impossible_ts",
        10: "invalid_value:auth",
        15: "not_an_object",
        16: "wrong_type:status",
    }
    return lines, expected


def write_messy(folder: Path, crlf: bool = True, bom: bool = True) -> Path:
    lines, _ = messy_lines()
    sep = "\r\n" if crlf else "\n"
    path = folder / "events.json"
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + sep.join(lines).encode())
    return path


def check_invariant(quality: dict[str, Any]) -> None:
    assert quality["loaded"] + quality["quarantined"] + quality["duplicates"] == quality["lines_read"]
    for stats in quality["files"].values():
        assert stats["loaded"] + stats["quarantined"] + stats["duplicates"] == stats["lines_read"]


@pytest.mark.parametrize("block_bytes", [64, 300, 16_777_216])
def test_messy_file_every_line_accounted(tmp_path: Path, block_bytes: int) -> None:
    path = write_messy(tmp_path)
    result = load_events([path], cfg(block_bytes=block_bytes))
    q = result.quality
    lines, expected = messy_lines()
    assert q["lines_read"] == sum(1 for s in lines if s.strip())
    got = {r["source_line"]: r["reason"] for r in result.quarantine}
    assert got == expected
    assert all(r["source_file"] == "events.json" for r in result.quarantine)
    assert q["duplicates"] == 1 and q["quarantined"] == len(expected)
    assert q["unknown_pages"] == {"Brand New Page": 1}
    assert q["anonymous"] == 1 and result.anonymous["source_line"].to_list() == [14]
    check_invariant(q)
    assert sorted(result.events["source_line"].to_list()) == [1, 3, 13, 17]


def test_fast_and_slow_paths_agree(tmp_path: Path) -> None:
    """Tiny blocks (mostly the per-line path) and one big block give identical outputs."""
    path = write_messy(tmp_path)
    small = load_events([path], cfg(block_bytes=64))
    big = load_events([path], cfg())
    assert small.events.equals(big.events)
    assert small.quarantine == big.quarantine


def test_events_table_types_order_and_sort(tmp_path: Path) -> None:
    recs = [event(user=u, ts=TS0 + t, item=t) for u, t in [("b", 5), ("a", 9), ("a", 1), ("b", 2)]]
    (tmp_path / "x.json").write_text("\n".join(map(line, recs)) + "\n")
    ev = load_events([tmp_path], cfg()).events
    assert tuple(ev.columns) == EVENT_COLUMNS
    assert dict(ev.schema) == EVENT_DTYPES
    assert ev.select("user_id", "ts").rows() == sorted(ev.select("user_id", "ts").rows())
    assert ev["registration"][0] is not None


def test_folder_discovery_skips_underscore_and_dot(tmp_path: Path) -> None:
    rels = ["a.json", "b.jsonl", "c.json.gz", "sub/d.jsonl.gz", "e.parquet", "_truth/t.json", ".x/y.json"]
    for rel in rels:
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text("")
    (tmp_path / "_skip.json").write_text("")
    (tmp_path / "notes.txt").write_text("")
    names = [name for _, name in discover_files([tmp_path])]
    assert names == ["a.json", "b.jsonl", "c.json.gz", "e.parquet", "sub/d.jsonl.gz"]


def test_gzip_and_cross_file_duplicates(tmp_path: Path) -> None:
    recs = [line(event(ts=TS0 + i, item=i)) for i in range(5)]
    (tmp_path / "a.json").write_text("\n".join(recs[:3]))  # no trailing newline
    with gzip.open(tmp_path / "b.json.gz", "wt") as fh:
        fh.write("\n".join(recs[2:]) + "\n")
    result = load_events([tmp_path], cfg())
    assert result.quality["duplicates"] == 1
    assert result.quality["files"]["b.json.gz"]["duplicates"] == 1  # the later copy is the one dropped
    assert result.events.height == 5
    check_invariant(result.quality)


def test_parquet_input_round_trip(tmp_path: Path) -> None:
    write_messy(tmp_path)
    first = load_events([tmp_path / "events.json"], cfg())
    pq_dir = tmp_path / "pq"
    pq_dir.mkdir()
    first.events.write_parquet(pq_dir / "events.parquet")
    again = load_events([pq_dir], cfg())
    assert again.quality["quarantined"] == 0
    cols = [c for c in EVENT_COLUMNS if c not in ("source_file", "source_line")]
    assert again.events.select(cols).equals(first.events.select(cols))
    raw_dir = tmp_path / "raw"
    raw_dir.mkdir()
    pl.DataFrame([event(ts=TS0 + i, item=i) for i in range(3)]).write_parquet(raw_dir / "raw.parquet")
    assert load_events([raw_dir], cfg()).events.height == 3


def test_deterministic_bytes(tmp_path: Path) -> None:
    write_messy(tmp_path)
    runner = CliRunner()
    for out in ("o1", "o2"):
        args = ["load", str(tmp_path / "events.json"), "--out", str(tmp_path / out)]
        args += ["--max-bad-line-share", "1"]
        res = runner.invoke(app, args)
        assert res.exit_code == 0, res.output
    for name in ("events.parquet", "anonymous_events.parquet", "quarantine.jsonl", "quality.json"):
        assert (tmp_path / "o1" / name).read_bytes() == (tmp_path / "o2" / name).read_bytes()
    quality = json.loads((tmp_path / "o1" / "quality.json").read_text())
    for key in ("lines_read", "loaded", "quarantined", "duplicates"):
        assert isinstance(quality[key], int)
    check_invariant(quality)
    rows = [json.loads(s) for s in (tmp_path / "o1" / "quarantine.jsonl").read_text().splitlines()]
    assert {"source_file", "source_line", "reason", "raw"} <= set(rows[0])
    assert read_events(tmp_path / "o1" / "events.parquet").height == 4


def test_too_many_bad_lines_fails_naming_file_line_reason(tmp_path: Path) -> None:
    path = write_messy(tmp_path)
    with pytest.raises(TooManyBadLinesError) as info:
        load_events([path], DataConfig(max_bad_line_share=0.01))
    assert "events.json:4: invalid_json" in str(info.value)
    out = tmp_path / "out"
    res = CliRunner().invoke(app, ["load", str(path), "--out", str(out)])
    assert res.exit_code == 1
    assert "events.json:4: invalid_json" in res.output
    outputs = list(out.iterdir()) if out.exists() else []
    written = [p for p in outputs if p.name.endswith((".parquet", ".json", ".jsonl"))]
    assert written == []


def test_stage_script_fails_without_outputs(tmp_path: Path, repo_root: Path) -> None:
    raw = tmp_path / "data"
    raw.mkdir()
    write_messy(raw)
    args = ["--raw", str(raw), "--params", str(repo_root / "params.yaml")]
    for name, file in [("events", "e.parquet"), ("anonymous", "a.parquet"), ("quarantine", "q.jsonl")]:
        args += [f"--{name}", str(tmp_path / "out" / file)]
    args += ["--quality", str(tmp_path / "out" / "quality.json")]
    proc = subprocess.run(
        [sys.executable, str(repo_root / "stages" / "load.py"), *args], capture_output=True, text=True
    )
    assert proc.returncode == 1
    assert "events.json:4: invalid_json" in proc.stderr
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").iterdir())


def test_stage_and_cli_run_one_body(tmp_path: Path, repo_root: Path) -> None:
    """stages/load.py and `churnflow load` write the same bytes (both call churnflow.data.entry.run_load)."""
    recs = [event(user=u, ts=TS0 + i, item=i) for i, u in enumerate(["b", "a", "", "a"] * 5)]
    (tmp_path / "raw").mkdir()
    (tmp_path / "raw" / "x.json").write_text("\n".join(map(line, recs)) + "\n")
    params = repo_root / "params.yaml"
    spec = importlib.util.spec_from_file_location("stage_load", repo_root / "stages" / "load.py")
    assert spec is not None and spec.loader is not None
    stage = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(stage)
    names = ("events.parquet", "anonymous_events.parquet", "quarantine.jsonl", "quality.json")
    stage.main(tmp_path / "raw", *(tmp_path / "stage" / n for n in names), params=params)
    res = CliRunner().invoke(app, ["load", str(tmp_path / "raw"), "--out", str(tmp_path / "cli")])
    assert res.exit_code == 0, res.output
    for name in names:
        assert (tmp_path / "stage" / name).read_bytes() == (tmp_path / "cli" / name).read_bytes(), name
    assert json.loads((tmp_path / "cli" / "quality.json").read_text())["anonymous"] == 5


def test_normalize_records_names_the_field() -> None:
    frame = normalize_records([event(ts=TS0 + 5), event(ts=TS0)])
    assert tuple(frame.columns) == EVENT_COLUMNS and frame["ts"].is_sorted()
    cases = [
        (event(ts="soon"), "ts"),
        ({k: v for k, v in event().items() if k != "page"}, "page"),
        (event(level="gold"), "level"),
        (event(sessionId=1.5), "sessionId"),
        (event(ts=1), "ts"),
    ]
    for bad, field in cases:
        with pytest.raises(EventValidationError) as info:
            normalize_records([event(), bad])
        assert (info.value.field, info.value.index) == (field, 1), info.value
    with pytest.raises(EventValidationError) as info:
        normalize_records([event(), "nope"])  # type: ignore[list-item]
    assert info.value.index == 1 and info.value.field is None


# ------------------------------------------------------------------------------------ property test
_BAD = st.sampled_from(
    [
        "{oops",
        "null",
        "42",
        line({k: v for k, v in event().items() if k != "ts"}),
        line(event(ts="x")),
        line(event(userId=None)),
        line(event(itemInSession=2.5)),
        line(event(level="platinum")),
        line(event(ts=-5)),
        line(event(length="long")),
        line(event(song=12)),
    ]
)


@st.composite
def _files(draw: st.DrawFn) -> tuple[list[list[str]], int, int, int]:
    """Random files of good, duplicate, bad and blank lines; expected (bad, duplicates, blank) counts."""
    n_files = draw(st.integers(1, 3))
    files: list[list[str]] = []
    seen: list[str] = []
    n_bad = n_dup = n_blank = 0
    counter = 0
    for _ in range(n_files):
        lines: list[str] = []
        for kind in draw(st.lists(st.sampled_from(["good", "dup", "bad", "blank"]), max_size=25)):
            if kind == "dup" and seen:
                lines.append(draw(st.sampled_from(seen)))
                n_dup += 1
            elif kind == "bad":
                lines.append(draw(_BAD))
                n_bad += 1
            elif kind == "blank":
                lines.append(draw(st.sampled_from(["", " ", "\t"])))
                n_blank += 1
            else:
                counter += 1
                user = draw(st.sampled_from(["", "1", "2", "10"]))
                rec = line(event(user=user, ts=TS0 + counter * 7, item=counter))
                seen.append(rec)
                lines.append(rec)
        files.append(lines)
    return files, n_bad, n_dup, n_blank


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=_files(), block=st.sampled_from([40, 256, 1 << 20]), crlf=st.booleans())
def test_property_nothing_is_lost(
    tmp_path_factory: pytest.TempPathFactory,
    data: tuple[list[list[str]], int, int, int],
    block: int,
    crlf: bool,
) -> None:
    files, n_bad, n_dup, n_blank = data
    folder = tmp_path_factory.mktemp("prop")
    sep = "\r\n" if crlf else "\n"
    for i, lines in enumerate(files):
        (folder / f"f{i}.jsonl").write_text(sep.join(lines))
    result = load_events([folder], cfg(block_bytes=block))
    q = result.quality
    assert q["lines_read"] == sum(len(f) for f in files) - n_blank
    assert (q["quarantined"], q["duplicates"]) == (n_bad, n_dup)
    check_invariant(q)
    assert q["loaded"] == result.events.height + result.anonymous.height
    keys = result.events.select([c for c in EVENT_COLUMNS if c not in ("source_file", "source_line")])
    assert keys.is_duplicated().sum() == 0


def test_raw_keys_cover_event_columns() -> None:
    assert len(RAW_KEYS) == 18 and len(EVENT_COLUMNS) == 20


def test_eventsim_sample_loads_clean(shared_dir: Path) -> None:
    result = load_events([shared_dir / "external" / "eventsim_log_data"], DataConfig())
    q = result.quality
    assert q["n_files"] == 30 and q["quarantined"] == 0
    check_invariant(q)
    assert result.events.height + result.anonymous.height == q["lines_read"]


@pytest.mark.parametrize(
    ("override", "reason"),
    [
        ({"userId": 7}, "wrong_type:userId"),
        ({"song": True}, "wrong_type:song"),
        ({"ts": TS0 + 0.5}, "wrong_type:ts"),
        ({"sessionId": 1e3}, "wrong_type:sessionId"),
        ({"status": False}, "wrong_type:status"),
        ({"length": [1]}, "wrong_type:length"),
        ({"artist": {"a": 1}}, "wrong_type:artist"),
    ],
)
def test_fast_path_never_coerces_a_wrong_type(tmp_path: Path, override: dict[str, Any], reason: str) -> None:
    """One wrong value among clean lines (one block) is quarantined, not silently converted."""
    recs = [event(ts=TS0 + i, item=i) for i in range(50)]
    recs[20] = {**recs[20], **override}
    (tmp_path / "x.json").write_text("\n".join(map(line, recs)) + "\n")
    result = load_events([tmp_path], cfg())
    assert [(r["source_line"], r["reason"]) for r in result.quarantine] == [(21, reason)]
    assert result.events.height == 49


def test_read_events_selected_columns(tmp_path: Path) -> None:
    write_messy(tmp_path)
    res = CliRunner().invoke(
        app,
        ["load", str(tmp_path / "events.json"), "--out", str(tmp_path / "o"), "--max-bad-line-share", "1"],
    )
    assert res.exit_code == 0, res.output
    part = read_events(tmp_path / "o" / "events.parquet", ("user_id", "ts", "page"))
    assert part.columns == ["user_id", "ts", "page"] and part.schema["page"] == EVENT_DTYPES["page"]
    with pytest.raises(ValueError, match="not events-table columns"):
        read_events(tmp_path / "o" / "events.parquet", ("nope",))
