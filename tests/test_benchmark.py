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

    (out_a, _), (out_b, _) = interleaved_times([a, b], torch.device("cpu"), reps=3)
    assert calls == ["a", "b", "a", "b", "b", "a", "a", "b"]  # warm-ups, then a b, b a, a b
    assert (out_a, out_b) == ("a result", "b result")
    calls.clear()
    out, _ = median_time(a, torch.device("cpu"), reps=2)
    assert calls == ["a"] * 3 and out == "a result"
