"""The one error type the lab raises for bad input; the CLI prints it as one paragraph."""


class RewardLabError(Exception):
    """Bad input or a broken artifact: the message says what is wrong and where.

    The CLI catches this, prints the message without a traceback and exits with code 2.
    Finished stages stay on disk, so the run resumes once the cause is fixed.
    """
