"""Notebook kernels started one notebook ahead.

Every notebook of a chain runs in a new kernel (Papermill), and a new kernel spends about 3 s
importing torch, torchvision and pandas before the notebook's first real cell. The
runner starts the next notebook's kernel, and has it import those modules, while the current
notebook runs; Papermill then runs the notebook in that kernel. The warm-up is a silent
execution (no history, no execution count, no output, no names in the notebook's namespace): only
`sys.modules` differs, so the notebook computes what it would in a cold kernel. It also freezes
the import-time objects (`gc.freeze()`): the interpreter's last garbage collection would walk
them at exit, a second or more per notebook, and they live until then anyway.
"""

from __future__ import annotations

import queue
import threading
import time
from pathlib import Path

from jupyter_client import KernelManager

# Statements that bind no name in the notebook's namespace. The garbage collector is off while
# the imports build their objects (which live until exit anyway): its passes over them took
# about 0.8 s of the 4.8 s these imports take on one core (benchmarks/README.md).
WARM_UP = """\
__import__('gc').disable()
try:
    __import__('gadlib.stages'); __import__('gadlib.figures'); __import__('IPython.display')
finally:
    __import__('gc').freeze(); __import__('gc').enable()
"""


class _Manager(KernelManager):
    # Started and stopped here with the plain (blocking) manager; Papermill's client (nbclient)
    # talks to the kernel with the asynchronous client it uses for its own kernels.
    client_class = "jupyter_client.asynchronous.AsyncKernelClient"

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.clients = []  # nbclient stops the client it made only for kernels it started itself

    def client(self, **kwargs):
        kc = super().client(**kwargs)
        self.clients.append(kc)
        return kc

    async def _async_interrupt_kernel(self) -> None:
        # jupyter_client interrupts a kernel before it asks it to shut down. Ours are idle then (their
        # notebook or warm-up done), and ipykernel logged that SIGINT, racing the shutdown request,
        # as "[IPKernelApp] ERROR | KeyboardInterrupt caught in kernel": a false alarm after a good
        # run. A kernel still busy is killed once the request's wait (shutdown_wait_time) is over.
        if not self.shutting_down:
            await super()._async_interrupt_kernel()


# A kernel alive but silent this long is left to the notebook, whose client times out on it as on
# any kernel that does not answer (nbclient, 60 s): the notebook fails with that error, and
# wait() never hangs. (The runner starts another kernel only for one that died unanswered.)
WARM_UP_TIMEOUT_S = 300


class WarmKernel:
    """A kernel started now, in `cwd` with `arguments`, that imports gadlib's modules at once.
    `wait()` returns its manager once the warm-up is done (normally long before), for Papermill
    (`execute_notebook(km=...)`); `close()` shuts it down. With `fork_server` (the socket of a
    `gadlib.forkkernel.ForkServer`) the kernel is a fork of that server."""

    def __init__(
        self, cwd: str | Path, arguments: list[str], kernel_name: str = "python3", fork_server: str | None = None
    ):
        self.km = _Manager(kernel_name=kernel_name)
        if fork_server:
            from .forkkernel import NAME

            self.km.kernel_spec.metadata["kernel_provisioner"] = {
                "provisioner_name": NAME,
                "config": {"server": fork_server},
            }
        self.km.start_kernel(cwd=str(cwd), extra_arguments=list(arguments))
        self._died_unanswered = False  # set once the kernel is seen dead before its first reply
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._warm_up, name="warm-kernel", daemon=True)
        self._thread.start()

    def _warm_up(self) -> None:
        # Whatever goes wrong here (a kernel that does not start, an import error) is left for
        # the notebook itself to meet and report as it would in a cold kernel. The request is
        # sent at once (ZeroMQ holds it until the kernel listens) rather than after the client's
        # wait_for_ready, whose one-second polls would keep a close() waiting up to two seconds.
        kc = self.km.blocking_client()
        try:
            kc.start_channels(iopub=False, stdin=False, hb=False, control=False)  # the reply is all it needs
            msg_id = kc.execute(WARM_UP, silent=True, store_history=False)
            give_up = time.monotonic() + WARM_UP_TIMEOUT_S
            while not self._stop.is_set() and time.monotonic() < give_up:
                try:
                    if kc.get_shell_msg(timeout=0.1)["parent_header"].get("msg_id") == msg_id:
                        return
                except queue.Empty:
                    if not self.km.is_alive():  # it ran nothing: the warm-up comes before any cell
                        self._died_unanswered = True
                        return
        except Exception:
            return
        finally:
            kc.stop_channels()

    def wait(self) -> KernelManager:
        """The manager, once the warm-up has run: the notebook's cells come after it."""
        self._thread.join()
        return self.km

    @property
    def did_not_start(self) -> bool:
        """Whether the kernel died before it answered anything, so that no cell of a notebook
        given to it ran. Seen once in CI: a kernel's port, chosen free by jupyter_client, was
        taken by another connection before the kernel bound it ("Address already in use"). A
        warm-up that failed otherwise leaves this False: the notebook meets its kernel as it is."""
        self._thread.join()
        return self._died_unanswered

    def close(self) -> None:
        """Shut the kernel down; at once if it is still warming up (nothing of it is needed)."""
        self._stop.set()
        if self._thread.is_alive():
            if self.km.has_kernel:
                self.km.shutdown_kernel(now=True)
            self._thread.join(timeout=10)  # it sees the stop at its next poll (0.1 s)
        elif self.km.has_kernel:
            # A dead kernel is only cleaned up: asking it to shut down would open a socket in the
            # context that Papermill's client closed when the kernel died under it (ZMQError).
            self.km.shutdown_kernel(now=not self.km.is_alive())
        for kc in self.km.clients:
            kc.stop_channels()
