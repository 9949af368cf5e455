"""The time-to-accuracy benchmark's logic on the synthetic data (a low target, one or two epochs): it prints a ratio
on a line that says "time to", gives a lower bound ("≥") when the sources' recipe never reaches the target, no ratio
when ours never does, and the same accuracies on every run. No timing is ever asserted."""
from __future__ import annotations

import re
from dataclasses import replace

import pytest
import torch

from reportgen import bench

TINY_OURS = replace(bench.OURS, lr=0.01, epochs=2)
TINY_SOURCES = replace(bench.SOURCES, lr=0.003, epochs=2)


def _bench(threads: int = 1, **kwargs):
    lines: list[str] = []
    ours, sources = bench.run_bench(device="cpu", threads=threads, log=lines.append, **kwargs)
    return ours, sources, lines


def _verdict(lines: list[str]) -> str:
    found = [line for line in lines if "time to" in line]
    assert len(found) == 1, lines
    return found[0]


@pytest.mark.slow
def test_both_recipes_reach_a_low_target_the_ratio_is_on_a_time_to_line_and_accuracies_repeat(data_root):
    ours, sources, lines = _bench(target_pct=20.0, ours=TINY_OURS, sources=TINY_SOURCES)
    assert ours.reached_epoch is not None and sources.reached_epoch is not None
    assert ours.mean_accuracy_pct[-1] >= 20.0 and sources.mean_accuracy_pct[-1] >= 20.0
    assert all(len(epoch) == 3 for epoch in ours.accuracies + sources.accuracies)  # seeds 0, 1, 2 at every epoch
    assert re.search(r"time to 20% mean test accuracy .*: \d+\.\dx faster$", _verdict(lines))
    assert any("s/epoch" in line for line in lines)

    again, again_sources, _ = _bench(target_pct=20.0, ours=TINY_OURS, sources=TINY_SOURCES)
    assert again.accuracies == ours.accuracies and again_sources.accuracies == sources.accuracies
    assert ours.accuracies != sources.accuracies  # two recipes, not one run printed twice


@pytest.mark.slow
def test_a_sources_recipe_that_never_reaches_the_target_gives_a_lower_bound(data_root):
    frozen = replace(TINY_SOURCES, lr=1e-12, epochs=1)  # does not learn: stays near chance, below 20%
    ours, sources, lines = _bench(target_pct=20.0, ours=TINY_OURS, sources=frozen)
    assert ours.reached_epoch is not None and sources.reached_epoch is None
    verdict = _verdict(lines)
    assert re.search(r": ≥ \d+\.\dx faster \(the sources' recipe did not reach it in 1 epochs", verdict)
    bound = float(re.search(r"≥ (\d+\.\d)x", verdict).group(1))
    assert bound == round(sources.seconds_trained / ours.seconds_trained, 1)


@pytest.mark.slow
def test_no_ratio_when_our_recipe_never_reaches_the_target_and_the_thread_count_is_restored(data_root):
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        _, _, lines = _bench(threads=1, target_pct=101.0, ours=replace(TINY_OURS, epochs=1),
                             sources=replace(TINY_SOURCES, epochs=1))
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)
    verdict = _verdict(lines)
    assert "no ratio" in verdict and "x faster" not in verdict


def test_the_comparison_sums_training_seconds_over_seeds_up_to_the_epoch_that_reached_the_target():
    ours = bench.SideResult(bench.OURS, (0, 1, 2), 50.0, accuracies=[[0.4, 0.5, 0.6], [0.5, 0.6, 0.7]],
                            seconds=[[1.0, 1.0, 1.0], [1.0, 1.0, 1.0]], reached_epoch=2)
    sources = bench.SideResult(bench.SOURCES, (0, 1, 2), 50.0, accuracies=[[0.5, 0.5, 0.6]],
                               seconds=[[8.0, 8.0, 8.0]], reached_epoch=1)
    assert ours.seconds_to_target == 6.0 and sources.seconds_to_target == 24.0
    lines = bench.comparison_lines(ours, sources)
    assert lines[-1].endswith(": 4.0x faster")
    assert "8.0x faster per epoch" in lines[-2]
    not_reached = replace(sources, reached_epoch=None)
    assert "≥ 4.0x faster" in bench.comparison_lines(ours, not_reached)[-1]
