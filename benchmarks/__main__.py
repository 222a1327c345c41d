"""`make bench`: run the benchmarks and write BENCHMARKS.md.

python -m benchmarks [--models-dir models] [--output BENCHMARKS.md] [--window-s 3]
                     [--repetitions 5] [--warmup-s 1] [--overhead-window-s 10]

Every comparison is measured in alternation (benchmarks.harness.alternate): the sides take
turns, one window each per repetition. The gateway overhead has longer windows and three
repetitions of its own; batching, generation and similarity share --window-s and --repetitions.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path


def main(argv: Sequence[str] | None = None) -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--models-dir", type=Path, default=Path("models"))
    parser.add_argument("--output", type=Path, default=Path("BENCHMARKS.md"))
    parser.add_argument(
        "--window-s",
        type=float,
        default=3.0,
        help="length of each side's window in the batching, generation and similarity comparisons",
    )
    parser.add_argument(
        "--repetitions",
        type=int,
        default=5,
        help="repetitions of the batching, generation and similarity comparisons",
    )
    parser.add_argument(
        "--warmup-s", type=float, default=1.0, help="warm-up before each side's window"
    )
    parser.add_argument(
        "--overhead-window-s",
        type=float,
        default=10.0,
        help="length of each path's window in the gateway overhead comparison",
    )
    options = parser.parse_args(argv)

    from benchmarks import (
        batching,
        footprint,
        gateway_overhead,
        generation,
        modelserver_stages,
        similarity,
        stages,
    )
    from benchmarks.harness import Alternation, Window
    from benchmarks.machine import machine_facts
    from benchmarks.report import Results, render, replace_section, section_of
    from benchmarks.soak import HEADING as SOAK_HEADING
    from benchmarks.stack import cpu_clock, serving_stack
    from services.suite.trainer import train_missing

    models_dir = options.models_dir.resolve()
    train_missing(models_dir, "quick")
    alternation = Alternation(
        Window(length_s=options.window_s, warmup_s=options.warmup_s), options.repetitions
    )
    with tempfile.TemporaryDirectory() as work:
        work_dir = Path(work)
        batching_results = asyncio.run(batching.run(models_dir, work_dir, alternation))
        gateways = {"default": [], **generation.GATEWAYS}
        with serving_stack(models_dir, work_dir, gateways) as stack:
            model_server = footprint.at_start("model server (five models)", stack.model_server)
            gateway_dependencies = footprint.installed_size(footprint.requirement_set("gateway"))
            gateway = footprint.at_start("gateway", stack.gateways["default"], gateway_dependencies)
            default_port = stack.gateways["default"].port
            with gateway_overhead.started_proxy(stack.model_server.port) as proxy:
                overhead = asyncio.run(
                    gateway_overhead.run(
                        stack.gateways["default"],
                        proxy,
                        stack.model_server,
                        Window(length_s=options.overhead_window_s, warmup_s=options.warmup_s),
                    )
                )
            # In this process: the servers above wait idle meanwhile.
            stage_costs = asyncio.run(stages.run())
            # A model server of its own in this process, for the CNN and word2vec.
            modelserver_costs = asyncio.run(modelserver_stages.run(models_dir))
            unbatched = stack.gateways["one step per call"]
            # A path's CPU is that of the gateway and the model server together.
            model_server_pid = stack.model_server.child.pid
            through_default = cpu_clock(stack.gateways["default"].child.pid, model_server_pid)
            generation_clocks = {
                "window": through_default,
                "step": cpu_clock(unbatched.child.pid, model_server_pid),
                "continuous batching": through_default,
            }
            generations = asyncio.run(
                generation.run(default_port, unbatched.port, alternation, generation_clocks)
            )
            keyed = similarity.read_vectors(models_dir)
            with similarity.started_peer(keyed, work_dir) as peer:
                similarity_clocks = {
                    similarity.GATEWAY: through_default,
                    similarity.PEER: cpu_clock(peer.child.pid),
                }
                similar = asyncio.run(
                    similarity.run(keyed, default_port, peer.port, alternation, similarity_clocks)
                )
            footprints = [
                footprint.with_peak(model_server, stack.model_server),
                footprint.with_peak(gateway, stack.gateways["default"]),
            ]
    results = Results(
        batching=batching_results,
        model_alone=batching.time_model_alone(models_dir),
        overhead=overhead,
        stages=stage_costs,
        modelserver_stages=modelserver_costs,
        generation=generations,
        forecaster_alone=generation.time_forecaster_alone(models_dir),
        similarity=similar,
        word2vec_quality=similarity.word2vec_quality(models_dir),
        footprints=footprints,
    )
    report = render("make bench", machine_facts(), results)
    # `make soak` writes a section of its own, which a new bench run keeps.
    previous = options.output.read_text() if options.output.exists() else ""
    soak = section_of(previous, SOAK_HEADING)
    options.output.write_text(replace_section(report, SOAK_HEADING, soak) if soak else report)
    sys.stdout.write(report)


if __name__ == "__main__":
    main()
