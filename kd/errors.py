"""One exception type for input the user can fix; the CLI prints it as one paragraph, no traceback."""


class KDError(Exception):
    """Bad input (unknown name, out-of-range value, missing data or checkpoint): says what and how to fix."""


def with_options(what: str, build, **options):
    """build(**options), with an unknown option name said as a KDError instead of a TypeError."""
    try:
        return build(**options)
    except TypeError as exc:
        raise KDError(f"Bad {what} options ({', '.join(sorted(options))}): {exc}.") from None
