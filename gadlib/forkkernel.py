"""Notebook kernels forked from a process that has already imported torch.

A new kernel spends about 4 s of one core importing torch and torchvision before a notebook's
first cell, more than a smoke notebook's own work. A fork server imports them once; each kernel
is then a copy-on-write fork of it that starts ipykernel as `python -m ipykernel_launcher` would.
Only third-party modules that read nothing of the notebook's environment at import are preloaded
(not gadlib, tqdm.auto or matplotlib, which decide at import whether they run in a notebook), and
never anything that initialises CUDA, so a kernel computes what it would in a cold one.

Opt-in (`GAD_FORK_KERNELS=1`, which `make test` sets): the runner starts a server of its own per
run, so a run's kernels are its descendants, and killing the run kills them. `python -m
gadlib.forkkernel CMD ...` runs CMD with a server for every kernel it starts (nbval), where
GAD_FORK_KERNELS=1 too. The jupyter_client provisioner `gad-fork` (an entry point) asks the
server for a kernel, and starts it the usual way when there is no server, the server declines,
or the command is not ipykernel's. The provisioner waits for the server's answer in place, as
the launch it replaces waits for a process to start.
"""

from __future__ import annotations

import importlib.util
import json
import os
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from jupyter_client.provisioning import LocalProvisioner
from traitlets import Unicode

NAME = "gad-fork"  # the provisioner's entry point (pyproject.toml)
SERVER_ENV = "GAD_FORK_SERVER"  # the server's socket, for kernel managers not told it directly
# Read when the interpreter starts or a library loads (thread pools, devices, hashing): a request
# whose values differ from the server's gets a kernel started the usual way.
AT_START = (
    *("OMP_", "KMP_", "GOMP_", "MKL_", "OPENBLAS_", "CUDA_", "PYTORCH_", "TORCH_", "NPY_"),
    *("ATEN_", "ONEDNN_", "DNNL_"),  # torch's CPU kernels: ATEN_CPU_CAPABILITY, oneDNN's ISA cap
    *("PYTHON", "LD_", "LC_", "LANG", "MALLOC_", "GLIBC_TUNABLES"),  # malloc reads its own at start
)
PRELOAD = ("torch", "torchvision.models", "numpy", "pandas", "scipy.stats", "ipykernel.kernelapp")


def enabled() -> bool:
    """Whether the runner forks its kernels (Linux only: fork after imports is not safe on macOS)."""
    return os.environ.get("GAD_FORK_KERNELS", "") == "1" and sys.platform.startswith("linux")


class ForkServer:
    """A server process, a child of this one, that forks kernels; `close()`, or the end of this
    process, ends it. The socket is bound here, so a kernel can be asked for at once: the request
    waits in the backlog until the server has imported what it preloads."""

    def __init__(self):
        self._dir = tempfile.mkdtemp(prefix="gad-fork-")
        self.address = os.path.join(self._dir, "socket")
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as listener:
            listener.bind(self.address)
            listener.listen(64)
            # stdin is a pipe from here: at its end of file (this process died) the server stops
            self._proc = subprocess.Popen(
                [sys.executable, "-m", "gadlib.forkkernel", "--serve", str(listener.fileno())],
                stdin=subprocess.PIPE,
                pass_fds=[listener.fileno()],
            )

    def close(self) -> None:
        """Stop the server at once: it holds nothing to save, and its kernels have been shut down
        (any left stop within a second, when ipykernel sees their parent gone)."""
        if self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait()
        self._proc.stdin.close()
        shutil.rmtree(self._dir, ignore_errors=True)

    def __enter__(self) -> "ForkServer":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class _Forked:
    """What the provisioner needs of a `Popen` for a kernel that is the server's child, not ours."""

    stdin = stdout = stderr = None

    def __init__(self, pid: int):
        self.pid = pid
        self.returncode: int | None = None

    def poll(self) -> int | None:
        if self.returncode is None:
            try:
                os.kill(self.pid, 0)
            except ProcessLookupError:
                self.returncode = 0  # its exit status went to the server: unknown here
                return self.returncode
            except PermissionError:
                pass
            try:  # a zombie: ended, and its exit not reaped yet (or its server died first)
                if Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z":
                    self.returncode = 0
            except (OSError, IndexError):
                pass
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.poll() is None:
            if deadline is not None and time.monotonic() > deadline:
                raise subprocess.TimeoutExpired(str(self.pid), timeout)
            time.sleep(0.05)
        return self.returncode

    def send_signal(self, signum: int) -> None:
        if self.poll() is None:
            os.kill(self.pid, signum)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)


class ForkProvisioner(LocalProvisioner):
    """Kernels from the fork server: the one named in the kernel spec's provisioner config, or
    in GAD_FORK_SERVER. Anything else, or a server that cannot be reached, gets a kernel
    started the usual way."""

    server = Unicode("", config=True, help="the fork server's socket")

    async def launch_kernel(self, cmd: list[str], **kwargs):
        address = self.server or os.environ.get(SERVER_ENV, "")
        argv = _ipykernel_arguments(cmd)
        if not address or argv is None:
            return await super().launch_kernel(cmd, **kwargs)
        streams = _streams(kwargs)
        if streams is None:
            return await super().launch_kernel(cmd, **kwargs)
        request = {
            "argv": argv,
            "cwd": str(kwargs.get("cwd") or os.getcwd()),
            "env": dict(kwargs.get("env") or os.environ),
            "streams": list(streams),  # the names of the file descriptors sent with the request
        }
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
                conn.settimeout(300)  # the server's imports come first
                conn.connect(address)
                socket.send_fds(conn, [json.dumps(request).encode() + b"\n"], list(streams.values()))
                with conn.makefile() as answer:
                    pid = json.loads(answer.readline())["pid"]
        except (OSError, ValueError, KeyError):
            pid = None
        finally:
            for name, fd in streams.items():
                if kwargs.get(name) == subprocess.DEVNULL:
                    os.close(fd)
        if not isinstance(pid, int):  # no server, or it declined (another start-up environment)
            return await super().launch_kernel(cmd, **kwargs)
        self.process = _Forked(pid)
        self.pid = self.pgid = pid  # the kernel starts a session of its own, as jupyter_client's do
        self.cwd = request["cwd"]
        return self.connection_info


def _ipykernel_arguments(cmd: list[str]) -> list[str] | None:
    """The arguments after `-m ipykernel_launcher`, when `cmd` runs it with this Python."""
    if len(cmd) >= 3 and cmd[1:3] == ["-m", "ipykernel_launcher"]:
        if os.path.realpath(cmd[0]) == os.path.realpath(sys.executable):
            return cmd[3:]
    return None


def _streams(kwargs: dict) -> dict[str, int] | None:
    """The file descriptors the kernel's stdout and stderr are to be (none given: the server's),
    or None for a pipe to this process, which a forked kernel cannot be given."""
    targets = {name: kwargs[name] for name in ("stdout", "stderr") if kwargs.get(name) is not None}
    if any(
        not hasattr(t, "fileno") and t != subprocess.DEVNULL and not (isinstance(t, int) and t >= 0)
        for t in targets.values()
    ):
        return None
    return {
        name: os.open(os.devnull, os.O_WRONLY) if t == subprocess.DEVNULL else t.fileno() if hasattr(t, "fileno") else t
        for name, t in targets.items()
    }


def _serve(listener_fd: int) -> dict:
    """Preload, then fork one kernel per request until stdin ends. Returns, in the child only,
    the request it is to run as a kernel."""
    import gc

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the run's to handle; it then closes stdin
    gc.disable()  # as the kernels' warm-up does (gadlib.kernels): import-time objects live on
    for module in PRELOAD:
        __import__(module)
    gc.freeze()
    gc.enable()
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # kernels are reaped as they end
    listener = socket.socket(fileno=listener_fd)
    while True:
        ready, _, _ = select.select([listener, sys.stdin], [], [])
        if sys.stdin in ready and not os.read(sys.stdin.fileno(), 1024):
            return {}
        if listener not in ready:
            continue
        conn, _ = listener.accept()
        fds = []
        with conn:
            try:
                data, fds, _, _ = socket.recv_fds(conn, 1 << 16, 2)
                while not data.endswith(b"\n"):
                    more = conn.recv(1 << 16)
                    if not more:
                        raise ValueError("request cut short")
                    data += more
                request = json.loads(data)
                request["fds"] = dict(zip(request.pop("streams"), fds))
            except (OSError, ValueError, KeyError):
                for fd in fds:
                    os.close(fd)
                continue
            pid = None
            if _at_start(request["env"]) == _at_start(os.environ):
                try:
                    pid = os.fork()
                except OSError:  # out of processes or memory: the kernel is started the usual way
                    pass
            if pid == 0:
                listener.close()
                return request
            for fd in fds:
                os.close(fd)
            try:
                conn.sendall(json.dumps({"pid": pid}).encode() + b"\n")
            except OSError:
                if pid:
                    os.kill(pid, signal.SIGKILL)  # the one who asked is gone


def _at_start(env) -> dict:
    return {k: v for k, v in env.items() if k.startswith(AT_START)}


def _become_kernel(request: dict) -> None:
    """In the forked child: the process `python -m ipykernel_launcher ARGS` would be."""
    server = os.getppid()
    os.setsid()
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.default_int_handler)  # interrupts reach the cell
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)  # not the server's stdin pipe
    os.close(devnull)
    for name, fd in request["fds"].items():
        os.dup2(fd, 1 if name == "stdout" else 2)
        os.close(fd)
    os.chdir(request["cwd"])
    os.environ.clear()
    os.environ.update(request["env"])
    sys.argv = [importlib.util.find_spec("ipykernel_launcher").origin, *request["argv"]]

    import numpy as np

    np.random.seed()  # a fresh legacy global state, as in a new process (Python's random reseeds itself)
    from ipykernel import kernelapp

    # The kernel stops when its parent, the server, does (ipykernel polls for that), rather than
    # when the kernel manager does, as a kernel started by the launcher would (JPY_PARENT_PID).
    kernelapp.launch_new_instance(argv=[*request["argv"], f"--IPKernelApp.parent_handle={server}"])


def main(argv: list[str]) -> int:
    if argv[:1] == ["--serve"]:
        if sys.path and Path(sys.path[0]) == Path.cwd():
            del sys.path[0]  # -m's entry, which ipykernel_launcher removes too
        request = _serve(int(argv[1]))
        if request:
            _become_kernel(request)
        return 0
    if not argv:
        print("usage: python -m gadlib.forkkernel COMMAND [ARG ...]", file=sys.stderr)
        return 2
    if not enabled():
        return subprocess.call(argv)
    with ForkServer() as server:
        env = {**os.environ, SERVER_ENV: server.address, "JUPYTER_DEFAULT_PROVISIONER_NAME": NAME}
        child = subprocess.Popen(argv, env=env)
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the command too: it decides
        return child.wait()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
