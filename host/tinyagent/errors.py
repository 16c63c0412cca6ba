"""The one user-facing error type. The CLI prints it as one line and exits with its code."""

# Exit codes: 0 ok, 1 a check failed (test found a difference, eval under target), 2 bad input,
# 3 the board or device did not cooperate (port missing, busy, timeout), 4 does not fit the board,
# 5 a tool the build needs is missing (idf.py, pico-sdk), 130 interrupted.
EXIT_CHECK_FAILED = 1
EXIT_BAD_INPUT = 2
EXIT_DEVICE = 3
EXIT_DOES_NOT_FIT = 4
EXIT_TOOL_MISSING = 5
EXIT_INTERRUPTED = 130


class TinyAgentError(Exception):
    """A failure the user can act on. `str(e)` is one line naming the bad value and what is allowed."""

    def __init__(self, message: str, code: int = EXIT_BAD_INPUT, details: str = ""):
        super().__init__(message)
        self.code = code
        self.details = details  # optional multi-line report printed after the line (e.g. memory table)


def bad_input(message: str) -> TinyAgentError:
    return TinyAgentError(message, EXIT_BAD_INPUT)
