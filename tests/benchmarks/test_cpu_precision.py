"""benchmarks.cpu_precision at a tiny size: both precisions run and are
judged by one float32 loss (the numbers themselves are the benchmark's)."""

import pytest

from benchmarks import cpu_precision

pytestmark = pytest.mark.integration


def test_both_precisions_are_judged_by_the_same_float32_loss() -> None:
    report = cpu_precision.run(64, 4, pairs=[("grace_hopper.png", "starry.jpg")])
    (row,) = report["pairs"]
    full, half = row["float32"], row["mixed_bfloat16"]
    # The float32 run's own loss and its 8-bit picture's, re-measured: one scale.
    assert full["loss_in_float32"] == pytest.approx(full["own_loss"], rel=0.02)
    assert half["loss_in_float32"] > 0 and row["speedup"] > 0
    assert row["loss_change"] == pytest.approx(
        half["loss_in_float32"] / full["loss_in_float32"] - 1, abs=1e-3
    )
    assert set(report["cpu_flags"]) <= {"avx512_bf16", "amx_bf16", "amx_tile"}
