"""The sweep benchmark's own machinery: both sides step point by point alike (no timings asserted)."""

from pathlib import Path

from bench.bench_sweep import alone_steps, make_project, per_point, sweep_steps
from engine.training.sweep_plan import Setting


def test_the_sweep_and_the_lone_runs_take_the_same_steps_point_by_point(tmp_path: Path):
    project = make_project("mlp", epochs=2, samples=120)
    setting = Setting("training.weight_decay", (0.0, 1e-3, 1e-2))
    sweep = sum(1 for _ in sweep_steps(project, setting, tmp_path / "sweep"))
    alone = sum(1 for _ in alone_steps(project, setting, tmp_path / "alone"))
    assert sweep == alone == 3 * (2 + 1)  # each point: its epochs, then its end
    assert sorted(p.name for p in (tmp_path / "sweep").iterdir() if p.is_dir()) == ["point-01", "point-02", "point-03"]
    assert sorted(p.name for p in (tmp_path / "alone").iterdir()) == ["point-01", "point-02", "point-03"]


def test_a_points_seconds_are_the_sum_of_its_steps():
    assert per_point([1.0, 2.0, 3.0, 4.0, 5.0, 6.0], 2) == [6.0, 15.0]
