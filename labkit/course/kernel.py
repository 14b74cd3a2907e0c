"""The kernel manager ``labkit run`` executes notebooks with.

jupyter_client's ``shutdown_kernel`` first *interrupts* the kernel (SIGINT), then asks it
to shut down. When that SIGINT lands while ipykernel is inside a message handler (it
installs Python's default SIGINT handler for the length of each one), ipykernel logs
``[IPKernelApp] ERROR | KeyboardInterrupt caught in kernel.`` (ipykernel
kernelbase.py, dispatch_shell). After a notebook has finished, nothing is running that
needs interrupting, so that line is pure noise that looks like a failure before a
passing notebook; whether it appears depends on timing, hence "occasionally".

This manager skips the interrupt while shutting down; the shutdown request still goes
over the control channel, and jupyter_client still kills a kernel that does not exit in
time. Interrupts at any other time (nbclient's cell timeout) are unchanged.
"""

from __future__ import annotations

from jupyter_client.manager import AsyncKernelManager


class QuietShutdownKernelManager(AsyncKernelManager):
    async def _async_interrupt_kernel(self) -> None:
        if self.shutting_down:  # set by shutdown_kernel just before it would interrupt
            return
        await super()._async_interrupt_kernel()
