"""Kernels forked from a process that has imported torch (gadlib/forkkernel.py): a notebook sees
in one what it sees in a kernel started the usual way and computes the same numbers; interrupts,
shutdowns and a lost server behave as they do for a kernel of its own; without a server a kernel
starts the usual way."""

import json
import os
import subprocess
import sys
import time

import psutil
import pytest
from jupyter_client import KernelManager

from gadlib.forkkernel import NAME, SERVER_ENV, ForkServer
from gadlib.kernels import WarmKernel
from gadlib.reproduce import KERNEL_ARGUMENTS

from conftest import execute_probe

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="fork kernels are for Linux")

PROBE = """import json, os, signal, sys, threading
import matplotlib, matplotlib.pyplot as plt, numpy as np, torch
from tqdm.auto import tqdm
torch.manual_seed(0)
conv = torch.nn.Conv2d(3, 4, 3)
seen = dict(
    cwd=os.getcwd(), probe=os.environ.get("GAD_PROBE"), argv0=os.path.basename(sys.argv[0]),
    path0=sys.path[0], backend=matplotlib.get_backend(), tqdm=tqdm.__module__,
    sigint=signal.getsignal(signal.SIGINT) is signal.default_int_handler,
    sigchld=signal.getsignal(signal.SIGCHLD) == signal.SIG_DFL, own_session=os.getsid(0) == os.getpid(),
    threads=torch.get_num_threads(), gadlib="gadlib.stages" in sys.modules,
    numbers=conv(torch.randn(2, 3, 8, 8)).sum((1, 2, 3)).tolist(),
)
print(json.dumps(dict(seen=seen, draw=np.random.rand(), pid=os.getpid())))"""


def _probe(tmp_path, name, km=None):
    return json.loads(execute_probe(tmp_path, name, [PROBE], km=km).cells[0].outputs[0]["text"])


def _forked_manager(server, **env):
    km = KernelManager(kernel_name="python3")
    km.kernel_spec.metadata["kernel_provisioner"] = {"provisioner_name": NAME, "config": {"server": server.address}}
    km.start_kernel(extra_arguments=KERNEL_ARGUMENTS, env={**os.environ, **env})
    return km


@pytest.fixture(scope="module")
def server():
    """One server for the tests that leave it running (its imports take seconds)."""
    with ForkServer() as s:
        yield s


def test_a_forked_kernel_sees_and_computes_what_a_started_one_does(tmp_path, monkeypatch, server):
    """The runner's kernels, warmed up (gadlib.kernels), one started the usual way and two forked."""
    monkeypatch.setenv("GAD_PROBE", "from the manager")  # reaches the kernel through the request
    monkeypatch.delenv(SERVER_ENV, raising=False)
    kernel = WarmKernel(tmp_path, KERNEL_ARGUMENTS)
    try:
        started = _probe(tmp_path, "started", km=kernel.wait())
    finally:
        kernel.close()
    forked = []
    for i in range(2):
        kernel = WarmKernel(tmp_path, KERNEL_ARGUMENTS, fork_server=server.address)
        try:
            km = kernel.wait()
            assert type(km.provisioner).__name__ == "ForkProvisioner"
            assert psutil.Process(km.provisioner.pid).ppid() == server._proc.pid
            forked.append(_probe(tmp_path, f"forked{i}", km=km))
        finally:
            kernel.close()
    assert all(f["seen"] == started["seen"] for f in forked)
    assert started["seen"]["probe"] == "from the manager" and started["seen"]["cwd"] == str(tmp_path)
    # numpy's global generator is seeded afresh in each kernel, as in a new process
    assert forked[0]["draw"] != forked[1]["draw"] and forked[0]["pid"] != forked[1]["pid"]


def test_a_forked_kernel_is_interrupted_shut_down_and_ends_with_its_server():
    with ForkServer() as server:
        km = _forked_manager(server)
        kc = km.blocking_client()
        kc.start_channels()
        try:
            kc.wait_for_ready(timeout=120)
            # stop_on_error=False: else the kernel aborts what arrives just after the interrupt's
            # error, and the check below read "aborted" under load (two test workers)
            msg_id = kc.execute("import time; time.sleep(60)", stop_on_error=False)
            time.sleep(1.0)
            km.interrupt_kernel()
            reply = kc.get_shell_msg(timeout=20)
            assert reply["parent_header"]["msg_id"] == msg_id
            assert reply["content"]["status"] == "error" and reply["content"]["ename"] == "KeyboardInterrupt"
            assert kc.execute_interactive("x = 1", timeout=20)["content"]["status"] == "ok"  # still alive
        finally:
            kc.stop_channels()
        pid = km.provisioner.pid
        km.shutdown_kernel()
        assert not km.is_alive()
        _ends(pid, within=5)

        orphan = _forked_manager(server)
        pid = orphan.provisioner.pid
    # the server is gone: its kernel sees its parent change and stops (ipykernel polls every second)
    _ends(pid, within=10)
    assert not orphan.is_alive()
    orphan.cleanup_resources()


def _ends(pid, within):
    """The process is gone within `within` seconds (a zombie counts: its exit is being reaped)."""
    deadline = time.time() + within
    while True:
        try:
            if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                return
        except psutil.NoSuchProcess:
            return
        assert time.time() < deadline, f"process {pid} still running after {within} s"
        time.sleep(0.05)


def test_without_a_server_a_kernel_starts_the_usual_way(tmp_path, monkeypatch):
    monkeypatch.delenv(SERVER_ENV, raising=False)
    for address in ("", str(tmp_path / "no-server")):
        km = KernelManager(kernel_name="python3")
        km.kernel_spec.metadata["kernel_provisioner"] = {"provisioner_name": NAME, "config": {"server": address}}
        km.start_kernel(extra_arguments=KERNEL_ARGUMENTS)
        try:
            assert isinstance(km.provisioner.process, subprocess.Popen)
        finally:
            km.shutdown_kernel(now=True)


def test_a_kernel_asking_for_other_thread_settings_starts_the_usual_way(server):
    """OMP_NUM_THREADS and the like are read when a library loads: the server has loaded them
    with its own values, so it declines, and the kernel starts the usual way with the asked ones."""
    threads = "1" if os.environ.get("OMP_NUM_THREADS") != "1" else "2"
    probe = "import os, torch; print(os.environ['OMP_NUM_THREADS'], torch.get_num_threads())"
    # torch caps the asked threads at what it counts as the machine's cores (a CI machine's torch
    # gave 1 when asked for 2; here 4 gives 2), so the kernel should see what a new process sees
    started = subprocess.run(
        [sys.executable, "-c", probe], env={**os.environ, "OMP_NUM_THREADS": threads}, capture_output=True, text=True
    )
    km = _forked_manager(server, OMP_NUM_THREADS=threads)
    kc = km.blocking_client()
    kc.start_channels()
    try:
        kc.wait_for_ready(timeout=120)
        out = []
        kc.execute_interactive(
            probe,
            timeout=120,
            output_hook=lambda m: out.append(m["content"].get("text", "")) if m["msg_type"] == "stream" else None,
        )
        seen = "".join(out).strip()
        assert isinstance(km.provisioner.process, subprocess.Popen)
        assert seen.split()[0] == threads and seen == started.stdout.strip(), (seen, started.stdout, started.stderr)
        assert server._proc.poll() is None  # declined by a live server, not started for want of one
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)


def test_settings_read_at_start_are_told_apart_from_the_rest():
    """A request differing from the server in these gets a kernel of its own (torch read them when
    the server imported it); any other variable reaches a forked kernel as it is."""
    from gadlib.forkkernel import _at_start

    env = {"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2", "OMP_NUM_THREADS": "1", "GAD_PROBE": "x"}
    assert set(_at_start(env)) == {"ATEN_CPU_CAPABILITY", "ONEDNN_MAX_CPU_ISA", "OMP_NUM_THREADS"}


def test_the_wrapper_gives_every_kernel_of_its_command_a_fork(tmp_path):
    """`python -m gadlib.forkkernel CMD`, as make test runs nbval: plain KernelManagers in CMD get
    forked kernels through the environment, and the stderr they ask for."""
    script = tmp_path / "start.py"
    script.write_text(
        "import os, sys\n"
        "from jupyter_client import KernelManager\n"
        "km = KernelManager(kernel_name='python3')\n"
        "km.start_kernel(extra_arguments=['--IPKernelApp.log_level=ERROR'], stderr=open(os.devnull, 'w'))\n"
        "kc = km.blocking_client(); kc.start_channels(); kc.wait_for_ready(timeout=120)\n"
        "code = 'import sys, matplotlib.pyplot, matplotlib; print(\"to stderr\", file=sys.__stderr__); '\n"
        "code += 'assert matplotlib.get_backend() == \"module://matplotlib_inline.backend_inline\"'\n"
        "ok = kc.execute_interactive(code, timeout=60)\n"
        "forked = not isinstance(km.provisioner.process, __import__('subprocess').Popen)\n"
        "kc.stop_channels(); km.shutdown_kernel()\n"
        "print(type(km.provisioner).__name__, 'forked' if forked else 'started', ok['content']['status'])\n"
    )
    done = subprocess.run(
        [sys.executable, "-m", "gadlib.forkkernel", sys.executable, str(script)],
        env={**os.environ, "GAD_FORK_KERNELS": "1"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["ForkProvisioner", "forked", "ok"]
    assert "to stderr" not in done.stderr  # the kernel's stderr went where nbval asks, /dev/null
