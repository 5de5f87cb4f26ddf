"""The project's own error and warning types, so notebooks and the runner can show one line."""


class GADInputError(ValueError):
    """Bad user input: the message names the input and what to do about it."""


class GADWarning(UserWarning):
    """Something the user must know that does not stop the run (skipped images, a classifier
    near chance). `python -m gadlib.reproduce` repeats these on the console."""


def negative_alpha(shown: str) -> GADInputError:
    """The one error for a negative alpha, from GAD's checks and the pipeline's settings alike."""
    return GADInputError(
        f"alpha {shown} is negative: alpha is how far the classes are pushed apart, >= 0 "
        "(0 retrains the model unchanged, the control)"
    )


def stopped_by_user(resume: str) -> int:
    """Ctrl-C in a command: one line saying what is kept and how to go on, instead of the
    tracebacks of every layer it went through (and asyncio's complaints about the notebook
    client's unfinished tasks at exit); the shell's exit status for SIGINT."""
    import logging
    import sys

    logging.getLogger("asyncio").setLevel(logging.CRITICAL)
    print(f"stopped (Ctrl-C): {resume}", file=sys.stderr)
    return 130
