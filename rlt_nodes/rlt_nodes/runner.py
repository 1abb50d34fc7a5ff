"""`main()` plumbing shared by every node executable: init, spin, clean shutdown on Ctrl-C / SIGTERM."""

from __future__ import annotations

import faulthandler
import signal
import sys
from collections.abc import Callable, Sequence

import rclpy
from rclpy.executors import ExternalShutdownException, MultiThreadedExecutor, SingleThreadedExecutor
from rclpy.node import Node

from rlt.app.launch import STACK_DUMP_SIGNAL
from rlt_nodes.params import check_given


def run_node(factory: Callable[[], Node], argv: Sequence[str] | None = None, threads: int = 1) -> int:
    """Create the node with `factory` and spin it until shutdown.

    A bad configuration, a missing file or an unusable device found while constructing the node (ValueError,
    OSError, RuntimeError) ends the process with one clear line and exit code 2. Errors while spinning keep
    their traceback (what a peer sends cannot cause one: subscriptions are boundaries, `rlt_nodes.boundary`).
    A node may set `exit_code` before calling `rclpy.shutdown()` to end on its own.
    """
    # Ctrl-C and SIGTERM end the spin through rclpy's own handlers (a shutdown: ExternalShutdownException), which
    # chain to the Python handlers found at init: no-ops here, so no KeyboardInterrupt is ever raised, e.g. inside
    # rclpy's message conversion, where a busy node turned it into a RuntimeError and a failed exit
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: None)
    # a node that does not stop: the supervisor sends SIGQUIT before SIGKILL and every thread's stack lands in the log
    faulthandler.register(STACK_DUMP_SIGNAL, all_threads=True, chain=False)
    rclpy.init(args=list(sys.argv if argv is None else argv))
    node = None
    try:
        node = factory()
        check_given(node, sys.argv if argv is None else argv)  # a misspelt override is an error, not ignored
    except (ValueError, OSError, RuntimeError) as exc:
        if node is not None:
            node.destroy_node()
        print(f"[{getattr(factory, '__name__', 'node')}] startup error: {exc}", file=sys.stderr, flush=True)
        rclpy.try_shutdown()
        return 2
    executor = SingleThreadedExecutor() if threads == 1 else MultiThreadedExecutor(num_threads=threads)
    executor.add_node(node)
    try:
        executor.spin()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    except Exception:
        if node.context.ok():
            raise
        # raised by the shutdown itself (rclpy closes the context from its signal thread while a callback publishes):
        # a clean stop, not a failure
    finally:
        node.destroy_node()
        rclpy.try_shutdown()  # restores the no-op handlers above
        # everything is saved: a process that then hangs on its way out (a DDS or runtime destructor) ends on the
        # supervisor's SIGTERM instead of waiting for SIGKILL
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, signal.SIG_DFL)
    return int(getattr(node, "exit_code", 0))


def finish(node: Node, exit_code: int = 0) -> None:
    """End the node's process from inside a callback: spin returns and `run_node` returns `exit_code`."""
    node.exit_code = exit_code
    node.context.try_shutdown()
