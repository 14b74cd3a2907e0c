"""``labkit run``'s kernel manager never interrupts a finished kernel on shutdown.

jupyter_client's shutdown sends SIGINT first; when it lands inside an ipykernel message
handler the kernel logs "KeyboardInterrupt caught in kernel" before a passing notebook.
"""

from __future__ import annotations

import asyncio
import signal

import pytest
from jupyter_client.manager import AsyncKernelManager

from labkit.kernel import QuietShutdownKernelManager

pytestmark = pytest.mark.notebooks  # starts a real ipykernel


async def _signals_sent_on_shutdown(cls: type[AsyncKernelManager]) -> list[int]:
    km = cls(kernel_name="python3")
    await km.start_kernel(extra_arguments=["--IPKernelApp.log_level=ERROR"])
    sent: list[int] = []
    original = km.provisioner.send_signal  # type: ignore[union-attr]

    async def record(signum: int) -> None:
        sent.append(signum)
        await original(signum)

    km.provisioner.send_signal = record  # type: ignore[union-attr,method-assign]
    await km.shutdown_kernel()
    return sent


def test_shutdown_sends_no_sigint_with_labkits_manager() -> None:
    assert signal.SIGINT in asyncio.run(_signals_sent_on_shutdown(AsyncKernelManager))
    assert signal.SIGINT not in asyncio.run(_signals_sent_on_shutdown(
        QuietShutdownKernelManager))


def test_interrupts_still_work_outside_shutdown() -> None:
    async def run() -> list[int]:
        km = QuietShutdownKernelManager(kernel_name="python3")
        await km.start_kernel(extra_arguments=["--IPKernelApp.log_level=ERROR"])
        sent: list[int] = []
        original = km.provisioner.send_signal  # type: ignore[union-attr]

        async def record(signum: int) -> None:
            sent.append(signum)
            await original(signum)

        km.provisioner.send_signal = record  # type: ignore[union-attr,method-assign]
        await km.interrupt_kernel()
        await km.shutdown_kernel(now=True)
        return sent

    assert asyncio.run(run())[0] == signal.SIGINT
