"""One exception type for bad input, so notebooks and the runner can show a one-line message."""


class GADInputError(ValueError):
    """Bad user input: the message names the input and what to do about it."""
