"""The benchmark's timing: what it compares must be measured alike."""

import torch
from speed import interleaved_times, median_time


def test_interleaved_times_alternate_the_order_and_keep_each_functions_result():
    calls = []

    def a():
        calls.append("a")
        return "a result"

    def b():
        calls.append("b")
        return "b result"

    (out_a, t_a), (out_b, t_b) = interleaved_times([a, b], torch.device("cpu"), reps=3)
    assert calls == ["a", "b", "a", "b", "b", "a", "a", "b"]  # warm-ups, then a b, b a, a b
    assert (out_a, out_b) == ("a result", "b result") and t_a >= 0 and t_b >= 0
    calls.clear()
    out, t = median_time(a, torch.device("cpu"), reps=2)
    assert calls == ["a"] * 3 and out == "a result" and t >= 0
