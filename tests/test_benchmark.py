"""The benchmark's timing: what it compares must be measured alike."""

import torch
from speed import header, interleaved_times, median_time

from gadlib import record
from gadlib.models import describe_device


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


def test_the_header_names_the_machine_and_the_code_as_a_runs_record_does(monkeypatch):
    cpu = torch.device("cpu")
    line = header(cpu)
    assert line.startswith(f"device: {describe_device(cpu)}, ")  # the CPU's model and its bf16
    clean = {"commit": "0123456789abcdef", "dirty": False, "dirty_paths": []}
    monkeypatch.setattr(record, "code_state", lambda paths: clean)
    assert "; commit 0123456; " in header(cpu)
    edited = {**clean, "dirty": True, "dirty_paths": ["benchmarks/speed.py"]}
    monkeypatch.setattr(record, "code_state", lambda paths: edited if "benchmarks" in paths else clean)
    assert "; commit 0123456 (with uncommitted changes: benchmarks/speed.py); " in header(cpu)
