"""BENCHMARKS.md's sections: `make soak` replaces its own, and `make bench` keeps it."""

from __future__ import annotations

from pathlib import Path

from benchmarks.report import replace_section, section_of
from benchmarks.soak import Sample, SoakResult, _throughput, render

DOCUMENT = "# Benchmarks\n\n## Batching\n\nrows\n\n## Soak\n\nold soak\n\n## Footprint\n\nmib\n"


def test_a_section_is_replaced_in_place_and_the_others_stay() -> None:
    updated = replace_section(DOCUMENT, "## Soak", "## Soak\n\nnew soak\n")
    assert updated == DOCUMENT.replace("old soak", "new soak")
    assert section_of(updated, "## Soak") == "## Soak\n\nnew soak\n"


def test_a_missing_section_is_appended() -> None:
    updated = replace_section("# Benchmarks\n\n## Batching\n\nrows\n", "## Soak", "## Soak\n\nx\n")
    assert updated == "# Benchmarks\n\n## Batching\n\nrows\n\n## Soak\n\nx\n"
    assert section_of("# Benchmarks\n", "## Soak") == ""


def test_the_last_section_is_replaced_to_the_end() -> None:
    document = "# B\n\n## Soak\n\nold\n"
    assert replace_section(document, "## Soak", "## Soak\n\nnew\n") == "# B\n\n## Soak\n\nnew\n"


def test_the_soak_report_gives_throughput_by_minute_and_memory_growth(tmp_path: Path) -> None:
    history = tmp_path / "soak_stats_history.csv"
    header = "Timestamp,Name,Requests/s,Total Request Count,Total Failure Count"
    rows = [f"{1000 + second},Aggregated,{100 + second // 60},{second * 100},0"
            for second in range(0, 180, 10)]  # fmt: skip
    history.write_text("\n".join([header, *rows]) + "\n")
    per_minute, requests, failures = _throughput(history)
    assert per_minute == {0: 100, 1: 101, 2: 102}
    assert (requests, failures) == (17000, 0)

    samples = [Sample(0, 800, 600), Sample(1, 900, 650), Sample(2, 918, 650)]
    result = SoakResult(3, 1, 8, requests, failures, per_minute, samples)
    assert result.growth("model_server") == (900, 918, 918 / 900 - 1)
    text = render(result)
    assert "- model server: 900 MiB after the 1-minute warm-up, 918 MiB at the end: +2.0%" in text
    assert "Target under 5%: met." in text
    assert "| 3 | 102 | 918 | 650 |" in text
