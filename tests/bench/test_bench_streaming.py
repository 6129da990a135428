"""The streaming benchmark's own machinery: both sides train on the same folder, epoch for epoch (no timings asserted)."""

from pathlib import Path

import pytest

from bench.bench_streaming import compare, main, make_folder


def test_both_sides_train_every_image_of_the_same_folder_epoch_for_epoch(tmp_path: Path):
    result = compare(60, "cpu", 0, 2, root=tmp_path)
    assert result["trainer samples"] == result["hand samples"] == 60
    assert len(result["epochs_ours"]) == len(result["epochs_theirs"]) == len(result["ratios"]) == 2
    assert result["peak_mb"] > 0
    folder = result["folder"]
    assert sum(1 for _ in folder.glob("class*/*.png")) == 60
    stamp = (folder / ".complete").stat().st_mtime_ns
    assert make_folder(60, tmp_path) == folder and (folder / ".complete").stat().st_mtime_ns == stamp  # reused


@pytest.mark.slow
def test_quick_mode_runs_with_workers_and_prints_the_ratio(tmp_path: Path, capsys):
    result = main(["--quick", "--cache", str(tmp_path), "--workers", "1", "--repeats", "1"])
    out = capsys.readouterr().out
    assert result["trainer samples"] == result["hand samples"] == 2000
    assert "ratio trainer / hand loop" in out and "peak resident memory" in out
