"""BENCHMARKS.md's sections: `make soak` replaces its own, and `make bench` keeps it; the
gateway's overhead and footprint against their targets."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.footprint import InstalledSize, ProcessFootprint
from benchmarks.gateway_overhead import PATHS, OverheadResults, OverheadRow, orders
from benchmarks.harness import Measurement, Window
from benchmarks.report import _footprint_section, _overhead_section, replace_section, section_of
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


def _measured(throughput: float, p50_ms: float, cpu_ms: float | None) -> Measurement:
    return Measurement(1, 100, throughput, p50_ms, p50_ms, p50_ms * 2, 1, True, 0, cpu_ms)


def _row(rpc: str, concurrency: int, gateway_p50s: list[float]) -> OverheadRow:
    """Direct and proxy the same in every repetition; the gateway's p50 as given."""
    return OverheadRow(
        rpc,
        concurrency,
        {
            "direct": tuple(_measured(1000, 1.0, None) for _ in gateway_p50s),
            "proxy": tuple(_measured(800, 1.0, 0.5) for _ in gateway_p50s),
            "gateway": tuple(_measured(760, p50, 0.6) for p50 in gateway_p50s),
        },
    )


def test_the_repetitions_alternate_and_ratios_are_medians_within_repetitions() -> None:
    assert orders(3) == [PATHS, PATHS[::-1], PATHS]
    row = _row("Classify", 1, [1.1, 5.0, 1.2])  # one repetition disturbed
    assert row.ratio("p50_ms") == pytest.approx(1.2)
    assert row.ratio("throughput", to="direct") == pytest.approx(0.76)
    assert row.median("gateway", "cpu_ms_per_request") == pytest.approx(0.6)


def test_the_overhead_targets_are_marked_met_or_missed() -> None:
    rows = [
        _row("Classify", 1, [1.1, 1.1, 1.1]),  # p50 1.10x: at most 1.15x
        _row("Classify", 32, [1.0] * 3),  # throughput 0.95x: at least 0.9x; CPU 1.2x: at most 1.3x
        _row("RecognizeDigits", 1, [1.4] * 3),  # p50 1.40x: at most 1.3x
        _row("RecognizeDigits", 32, [1.0] * 3),
    ]
    text = "\n".join(_overhead_section(OverheadResults(Window(length_s=1), 3, rows)))
    table = [line for line in text.splitlines() if "outstanding, " in line]
    assert table == [
        "| Classify | p50 at 1 outstanding, ms | 1.10 | 1.00 | 1.10x | ≤ 1.15x | met |",
        "| Classify | throughput at 32 outstanding, req/s | 760 | 800 | 0.95x | ≥ 0.9x | met |",
        "| Classify | CPU per request at 32 outstanding, ms | 0.600 | 0.500 | 1.20x | ≤ 1.3x "
        "| met |",
        "| RecognizeDigits | p50 at 1 outstanding, ms | 1.40 | 1.00 | 1.40x | ≤ 1.3x | missed |",
        "| RecognizeDigits | throughput at 32 outstanding, req/s | 760 | 800 | 0.95x | ≥ 0.75x "
        "| met |",
        "| RecognizeDigits | CPU per request at 32 outstanding, ms | 0.600 | 0.500 | 1.20x "
        "| ≤ 2x | met |",
    ]
    assert "| Classify | 1 | direct | 1000 | 1.00 / 2.00 |  |" in text
    assert "one 1-second window" in text


def test_the_gateway_footprint_is_marked_against_its_targets() -> None:
    dependencies = InstalledSize("base dependencies", {"tensorflow": 1_900_000_000, "numpy": 10})
    gateway = ProcessFootprint("gateway", 0.8, 689.0, 700.0, dependencies)
    text = "\n".join(_footprint_section([ProcessFootprint("model server", 5, 800, 810), gateway]))
    assert "| resident memory once serving five models | 689 MiB | ≤ 150 MiB | missed |" in text
    assert "| start until SERVING | 0.8 s | ≤ 1 s | met |" in text
    assert "| installed size of its own dependencies | 1900 MB | ≤ 150 MB | missed |" in text
    assert "2 installed distributions" in text and "the largest: tensorflow 1900 MB" in text
    assert "| model server | measured |" not in text  # it has no targets
