"""The one error tree of Conveyor.

    ConveyorError            base; ``code`` is the stable machine name, ``retryable`` drives the worker
    ├── InputError           the file or the request is bad: never retried, the job fails at once
    │   └── LimitExceeded    a configured bound was exceeded (size, depth, parts); names limit and value
    ├── TransientError       a dependency hiccup (database busy, storage timeout): retried with backoff
    ├── NotFound             the thing asked for does not exist (HTTP 404)
    ├── Conflict             the request clashes with the current state (HTTP 409)
    ├── Unauthenticated      no or unknown API key (HTTP 401)
    ├── Forbidden            the key's role does not allow it (HTTP 403)
    └── Cancelled            the job was cancelled while running; ends ``cancelled``, not ``failed``

The worker decides on retries from ``retryable`` alone, never from message text. Anything that is not a
ConveyorError (a bug, a crash in a library) counts as retryable: the job may succeed on another try, and
after ``max_attempts`` it is dead-lettered with the message kept.
"""

from __future__ import annotations


class ConveyorError(Exception):
    """Something went wrong that Conveyor knows how to report."""

    code = "error"
    retryable = False

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or (self.__doc__ or self.code).strip())

    @property
    def message(self) -> str:
        return str(self.args[0])


class InputError(ConveyorError):
    """The input is invalid."""

    code = "input_error"


class LimitExceeded(InputError):
    """A configured limit was exceeded."""

    code = "limit_exceeded"

    def __init__(self, limit: str, value: object, maximum: object, subject: str = "") -> None:
        where = f"{subject}: " if subject else ""
        super().__init__(f"{where}{limit} is {value}, over the limit of {maximum}")
        self.limit = limit
        self.value = value
        self.maximum = maximum
        self.subject = subject

    def __reduce__(self) -> tuple[type[LimitExceeded], tuple[str, object, object, str]]:
        """Pickle by the constructor's arguments: parser processes raise these across a pipe."""
        return type(self), (self.limit, self.value, self.maximum, self.subject)


class TransientError(ConveyorError):
    """A temporary failure; trying again later may succeed."""

    code = "transient_error"
    retryable = True


class NotFound(ConveyorError):
    """Not found."""

    code = "not_found"


class Conflict(ConveyorError):
    """The request conflicts with the current state."""

    code = "conflict"


class Unauthenticated(ConveyorError):
    """A valid API key is required."""

    code = "unauthenticated"


class Forbidden(ConveyorError):
    """This API key's role does not allow that."""

    code = "forbidden"


class Cancelled(ConveyorError):
    """The job was cancelled."""

    code = "cancelled"
