"""The project's own error and warning types, so notebooks and the runner can show one line."""


class GADInputError(ValueError):
    """Bad user input: the message names the input and what to do about it."""


class GADWarning(UserWarning):
    """Something the user must know that does not stop the run (skipped images, a classifier
    near chance). `python -m gadlib.reproduce` repeats these on the console."""
