"""The training benchmark's own machinery: lockstep order and the report (no timings asserted)."""

from bench.bench_training import Comparison, lockstep


def _steps(name, n, log):
    for i in range(n):
        log.append(name)
        yield


def test_lockstep_steps_by_turns_reversing_the_order_every_round():
    log: list[str] = []
    spent = lockstep(_steps("a", 3, log), _steps("b", 3, log), _steps("c", 2, log))
    assert log == ["a", "b", "c", "c", "b", "a", "a", "b"]
    assert [len(s) for s in spent] == [3, 3, 2] and all(t >= 0 for s in spent for t in s)


def test_epoch_ratio_is_the_median_of_side_by_side_epochs():
    result = Comparison(samples=100)
    # one slow epoch on the trainer's side (the machine stalled) does not move the median
    result.add([[1.0, 1.0, 5.0], [0.9, 0.9, 0.9], [1.0, 1.0, 1.0]])
    assert result.epoch_ratio("trainer", "hand loop") == 0.9
    assert result.epoch_ratio("trainer", "hand loop, fused Adam") == 1.0
    assert result.rates["hand loop"] == [100 / 2.7] and result.run_ratios("trainer", "hand loop") == [2.7 / 7.0]

