"""The one error type the lab raises for bad input (the CLI prints it as one paragraph), and the
unwinding that SIGINT and SIGTERM start."""

import signal


class RewardLabError(Exception):
    """Bad input or a broken artifact: the message says what is wrong and where.

    The CLI catches this, prints the message without a traceback and exits with code 2.
    Finished stages stay on disk, so the run resumes once the cause is fixed.
    """


class Interrupted(BaseException):
    """SIGINT or SIGTERM arrived: unwinds like ctrl-c (a stage being built is removed, a resumable
    one keeps its state) but is not a `KeyboardInterrupt`, which libraries catch and swallow."""

    def __init__(self, signum: int):
        self.signum = signum
        super().__init__(signal.Signals(signum).name)


def unwind_on_signals() -> None:
    """Make SIGINT and SIGTERM raise `Interrupted` in the main thread (also where a shell started
    the process with SIGINT ignored); a second signal while unwinding ends the process at once."""

    def handler(signum: int, frame) -> None:
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        raise Interrupted(signum)

    signal.signal(signal.SIGINT, handler)
    signal.signal(signal.SIGTERM, handler)
