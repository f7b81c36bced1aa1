"""One exception type for input the user can fix; the CLI prints it as one paragraph, no traceback."""
import math
import os


class KDError(Exception):
    """Bad input (unknown name, out-of-range value, missing data or checkpoint): says what and how to fix."""


def with_options(what: str, build, **options):
    """build(**options), with an unknown option name said as a KDError instead of a TypeError."""
    try:
        return build(**options)
    except TypeError as exc:
        raise KDError(f"Bad {what} options ({', '.join(sorted(options))}): {exc}.") from None


def env_number(name: str, default: float) -> float:
    """A numeric environment variable (>= 0; `default` when unset), or a KDError naming it."""
    raw = os.environ.get(name)
    if raw is None:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value >= 0):
        raise KDError(f"The environment variable {name}={raw!r} must be a number >= 0 (default {default:g}); fix "
                      f"or unset it. Nothing was written or trained.")
    return value


def os_failure(exc: OSError) -> str:
    """The one paragraph for an OSError after the checks before compute (a disk that fills up mid-sweep, a
    folder removed or made read-only meanwhile): every row and file is written atomically, so those finished
    before it are intact, and a re-run of the same command resumes."""
    where = f" on {exc.filename}" if exc.filename else ""
    return (f"{exc.strerror or exc}{where}. The rows and files finished before this are intact (each is written "
            f"whole or not at all); fix the cause (free some space, restore the folder) and re-run the same "
            f"command: it resumes where it stopped.")
