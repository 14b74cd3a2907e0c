"""``labkit run``'s kernel manager never interrupts a finished kernel on shutdown.

jupyter_client's shutdown sends SIGINT first; when it lands inside an ipykernel message
handler the kernel logs "KeyboardInterrupt caught in kernel" before a passing notebook.
"""

from __future__ import annotations

import asyncio
import signal

import pytest
from jupyter_client.manager import AsyncKernelManager

from labkit.course.kernel import QuietShutdownKernelManager

pytestmark = pytest.mark.notebooks  # starts a real ipykernel


async def _signals_sent(cls: type[AsyncKernelManager], *, interrupt_first: bool) -> list[int]:
    """Signals the manager sends a real kernel: (an interrupt, then) a shutdown."""
    km = cls(kernel_name="python3")
    await km.start_kernel(extra_arguments=["--IPKernelApp.log_level=ERROR"])
    sent: list[int] = []
    original = km.provisioner.send_signal  # type: ignore[union-attr]

    async def record(signum: int) -> None:
        sent.append(signum)
        await original(signum)

    km.provisioner.send_signal = record  # type: ignore[union-attr,method-assign]
    if interrupt_first:
        await km.interrupt_kernel()
    await km.shutdown_kernel(now=interrupt_first)
    return sent


def test_shutdown_sends_no_sigint_with_labkits_manager() -> None:
    assert signal.SIGINT in asyncio.run(_signals_sent(AsyncKernelManager, interrupt_first=False))
    assert signal.SIGINT not in asyncio.run(_signals_sent(QuietShutdownKernelManager,
                                                          interrupt_first=False))


def test_interrupts_still_work_outside_shutdown() -> None:
    sent = asyncio.run(_signals_sent(QuietShutdownKernelManager, interrupt_first=True))
    assert sent[0] == signal.SIGINT
