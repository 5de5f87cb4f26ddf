"""Kernels started one notebook ahead (gadlib/kernels.py): a notebook run in a warmed kernel sees
what it would see in a cold one, except that gadlib is imported already."""

import time
from unittest import mock

import papermill as pm
import psutil
import pytest

from gadlib.kernels import WarmKernel
from gadlib.reproduce import KERNEL_ARGUMENTS

from conftest import execute_probe

PROBE = """import gc, sys
shell = {"In", "Out", "get_ipython", "exit", "quit", "open"}
names = sorted(n for n in globals() if not n.startswith("_") and n not in shell | {"shell"})
imported = "gadlib.stages" in sys.modules
print(names, imported, len(In), gc.isenabled())"""


def _kernels():
    """This process's kernels: started as ipykernel, or forked by a gadlib.forkkernel server
    (GAD_FORK_KERNELS=1, as make test sets), whose kernels keep the server's command line."""
    return [
        p
        for p in psutil.Process().children(recursive=True)
        if any(name in " ".join(p.cmdline()) for name in ("ipykernel", "gadlib.forkkernel"))
    ]


def _probe(tmp_path, name, km=None):
    out = execute_probe(tmp_path, name, ["x = 1", PROBE], km=km)
    return [c.execution_count for c in out.cells], out.cells[1].outputs[0]["text"]


def test_a_warmed_kernel_differs_from_a_cold_one_only_in_what_is_imported(tmp_path, monkeypatch):
    """...and, its notebook done, it is shut down without the interrupt jupyter_client sends first,
    which ipykernel logged as "[IPKernelApp] ERROR | KeyboardInterrupt caught in kernel"."""
    from jupyter_client import KernelManager

    cold_counts, cold = _probe(tmp_path, "cold")
    kernel = WarmKernel(tmp_path, KERNEL_ARGUMENTS)
    signals = []
    real = KernelManager._async_signal_kernel

    async def signal_kernel(self, signum):
        signals.append(signum)
        await real(self, signum)

    monkeypatch.setattr(KernelManager, "_async_signal_kernel", signal_kernel)
    try:
        warm_counts, warm = _probe(tmp_path, "warm", km=kernel.wait())
    finally:
        kernel.close()
    assert signals == []
    assert warm_counts == cold_counts == [1, 2]  # the warm-up left no execution count
    # no name, no history, the garbage collector on (the warm-up turns it off while importing): only sys.modules
    assert cold == "['gc', 'sys', 'x'] False 3 True\n" and warm == "['gc', 'sys', 'x'] True 3 True\n"
    assert not _kernels()


def test_a_kernel_closed_while_warming_up_is_gone_at_once(monkeypatch):
    """Closed while it warms up, the kernel is killed (no polite shutdown request that would wait
    for the warm-up to end) and the warm-up thread has stopped when close() returns. The warm-up
    here lasts 60 s, so the bound below is no speed claim: a close() that waited for the warm-up,
    or for its own 10 s join, would take 10 s or more, one that does not takes a fraction of one."""
    from gadlib import kernels

    monkeypatch.setattr(kernels, "WARM_UP", "__import__('time').sleep(60)")
    kernel = WarmKernel(".", KERNEL_ARGUMENTS)
    assert kernel._thread.is_alive()
    started = time.monotonic()
    with mock.patch.object(kernel.km, "shutdown_kernel", wraps=kernel.km.shutdown_kernel) as shutdown:
        kernel.close()
    assert time.monotonic() - started < 8
    shutdown.assert_called_once_with(now=True)
    assert not kernel._thread.is_alive() and not _kernels()


@pytest.mark.parametrize("fork", ["0", "1"])
@pytest.mark.parametrize("failing", [1, 2])
def test_a_chain_that_fails_leaves_no_kernel(tmp_path, monkeypatch, failing, fork):
    """The first or the second notebook fails (a stand-in for Papermill that raises as a failing
    cell would): its warmed kernel and the one started for the next are both shut down, whether
    started the usual way or forked (gadlib/forkkernel.py, whose kernels a dead server would
    leave to init, out of this process's tree: so every kernel's own process is checked)."""
    from gadlib import kernels, reproduce

    monkeypatch.setenv("GAD_FORK_KERNELS", fork)
    pids = []

    class Recorded(kernels.WarmKernel):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            pids.append(self.km.provisioner.pid)

    monkeypatch.setattr(kernels, "WarmKernel", Recorded)

    monkeypatch.setenv("GAD_RUNS_DIR", str(tmp_path / "runs"))
    monkeypatch.setenv("GAD_FIGURES_DIR", str(tmp_path / "figures"))
    given = []

    def fails(*args, km=None, **kwargs):
        given.append(km)
        if len(given) == failing:
            raise pm.PapermillExecutionError(1, 2, "x", "ValueError", "boom", ["Traceback ..."])

    monkeypatch.setattr(pm, "execute_notebook", fails)
    with pytest.raises(reproduce.NotebookFailed):
        reproduce.run_chain({"profile": "smoke"}, ["resnet18"], log=lambda *_: None)
    assert len(given) == failing and None not in given and len(set(map(id, given))) == failing  # each in its own
    assert len(pids) == failing + 1
    assert not _kernels() and not [pid for pid in pids if psutil.pid_exists(pid) and not _zombie(pid)]


def _zombie(pid):
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE  # ended, being reaped
    except psutil.NoSuchProcess:
        return True


@pytest.mark.parametrize("fails_again", [False, True])
def test_a_kernel_that_does_not_start_is_replaced_once(tmp_path, monkeypatch, fails_again):
    """A kernel that dies before answering (a port taken between its choice and its bind, seen in
    CI) ran nothing of its notebook: the runner starts another kernel for the same notebook, once,
    and says so; a second such failure stops the chain as any dead kernel does. The kernels that
    should fail really die before their first reply (they exit while starting up), and the first
    notebook really meets its dead kernel in Papermill; the next notebooks stop at once."""
    from gadlib import kernels, reproduce

    monkeypatch.setenv("GAD_FORK_KERNELS", "0")
    monkeypatch.setenv("GAD_RUNS_DIR", str(tmp_path / "runs"))
    monkeypatch.setenv("GAD_FIGURES_DIR", str(tmp_path / "figures"))
    started, calls, lines = [], [], []
    dying = {1, 3} if fails_again else {1}  # kernel 2 is the one started ahead for the next notebook
    real_kernel = kernels.WarmKernel

    def kernel(cwd, arguments, **kwargs):
        started.append(len(started) + 1)
        if started[-1] in dying:  # exits after binding its ports, before it reads any request
            arguments = [*arguments, "--IPKernelApp.exec_lines=import os; os._exit(1)"]
        return real_kernel(cwd, arguments, **kwargs)

    real_execute = pm.execute_notebook

    def execute(notebook, executed, *args, km=None, **kw):
        calls.append((executed, km))
        if not km.is_alive():
            return real_execute(notebook, executed, *args, km=km, **kw)
        raise pm.PapermillExecutionError(1, 2, "x", "ValueError", "stop here", ["Traceback ..."])

    monkeypatch.setattr(kernels, "WarmKernel", kernel)  # the runner imports it when it runs
    monkeypatch.setattr(pm, "execute_notebook", execute)
    with pytest.raises(reproduce.NotebookFailed) as failed:
        reproduce.run_chain({"profile": "smoke"}, ["resnet18"], log=lines.append)
    assert len(calls) == 2 and calls[0][0] == calls[1][0] and calls[0][1] is not calls[1][1]  # the same notebook
    assert started == [1, 2, 3]
    notes = [line for line in lines if "did not start" in line]
    assert len(notes) == 1 and notes[0].startswith("  note: the kernel for 01_data did not start (")
    assert notes[0].endswith("); started another")
    assert ("stop here" in failed.value.line) is not fails_again  # a second dead kernel stops the chain
    assert not _kernels()


def test_a_kernel_that_never_answers_its_warm_up_does_not_hang_the_run(tmp_path):
    """An alive kernel that stays silent: wait() returns after the warm-up's time limit with the
    kernel taken as started, not replaced (the notebook then meets it as it is, under nbclient's
    own timeout, which this test does not run)."""
    from gadlib import kernels

    with (
        mock.patch.object(kernels, "WARM_UP", "import time; time.sleep(60)"),
        mock.patch.object(kernels, "WARM_UP_TIMEOUT_S", 1),
    ):
        kernel = WarmKernel(tmp_path, KERNEL_ARGUMENTS)
        started = time.monotonic()
        try:
            kernel.wait()
            assert time.monotonic() - started < 30 and not kernel.did_not_start
        finally:
            kernel.close()
