"""Named errors. Stages raise these; the state machine matches their names in Retry/Catch and the
HTTP layer maps them to status codes in one table (rendergate.api)."""


class RendergateError(Exception):
    """Base of every error the pipeline raises on purpose."""


class BadRequest(RendergateError):
    """The request is malformed or asks for something not allowed."""


class Unauthorized(RendergateError):
    """The caller did not present a valid API key."""


class NotFound(RendergateError):
    """The thing asked for does not exist."""


class Conflict(RendergateError):
    """The request conflicts with the current state."""


class PayloadTooLarge(BadRequest):
    """The declared upload is larger than allowed."""


class UnsupportedMediaType(BadRequest):
    """The declared content type is not one we accept."""


class LinkInvalid(RendergateError):
    """A signed link was tampered with or is not ours."""


class ReviewExpired(RendergateError):
    """The review link or the review task is past its expiry."""


class ReviewAlreadyDecided(Conflict):
    """A decision was already recorded for this review."""


class ImageRejected(RendergateError):
    """No asset of the run is an acceptable image; the message names the reason."""


class TransientError(RendergateError):
    """A dependency failed in a way worth retrying (the state machine retries this name)."""
