"""One exception type for input the user can fix; the CLI prints it as one paragraph, no traceback."""


class KDError(Exception):
    """Bad input (unknown name, out-of-range value, missing data or checkpoint): says what and how to fix."""
