"""Typed errors with machine codes.

The ingest service maps them to JSON error responses (status + ``code``); workers record them in a
failed job's status. Every code a client can see is listed in docs/api.md.
"""


class MedialaneError(Exception):
    status: int = 500
    code: str = "internal_error"

    def __init__(self, message: str, *, code: str | None = None, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        # The request parameter at fault, when one is (dotted inside JSON parameters: crop.side).
        self.field = field
        if code is not None:
            self.code = code


class MalformedRequest(MedialaneError):
    status, code = 400, "malformed_body"


class EmptyFile(MedialaneError):
    status, code = 400, "empty_file"


class NotFound(MedialaneError):
    status, code = 404, "not_found"


class TooLarge(MedialaneError):
    status, code = 413, "file_too_large"


class UnsupportedMedia(MedialaneError):
    status, code = 415, "unsupported_media"


class UnsupportedFormat(UnsupportedMedia):
    """The metadata op's refusal: no reader knows the file's format (exiftool reports an unknown file type)."""

    code = "unsupported_format"


class InvalidParameter(MedialaneError):
    status, code = 422, "invalid_parameter"


class CorruptMedia(MedialaneError):
    """The bytes claim a media type but are truncated or broken."""

    status, code = 422, "corrupt_media"


class UrlForbidden(MedialaneError):
    """The URL's scheme, host or resolved address is refused by the URL guard."""

    status, code = 422, "url_forbidden"


class HostUnresolvable(MedialaneError):
    """A URL's host name does not resolve (DNS has no address for it, or DNS failed): not a refusal."""

    status, code = 422, "dns_failed"


class FetchFailed(MedialaneError):
    """A URL passed the guard but could not be fetched. Each cause has its code: ``fetch_refused`` (nothing
    listens), ``fetch_timeout``, ``fetch_tls_failed`` (the TLS handshake or certificate), ``fetch_too_large``,
    ``fetch_http_error`` (the server answered an error status) and ``fetch_failed`` (any other connection
    error, too many redirects)."""

    status, code = 502, "fetch_failed"


class ExtractFailed(MedialaneError):
    """Metadata extraction failed (codes extract_failed, extract_timeout)."""

    status, code = 500, "extract_failed"


class Unavailable(MedialaneError):
    """A part of the pipeline does not answer: the code names it (``broker_unavailable``,
    ``object_store_unavailable``, ``workers_unavailable``...) and ``retry_after`` seconds tells when to try again."""

    status, code = 503, "unavailable"

    def __init__(self, message: str, *, code: str | None = None, retry_after: int = 5) -> None:
        super().__init__(message, code=code)
        self.retry_after = retry_after


class Unauthorized(MedialaneError):
    """No API key, or one that is unknown or revoked."""

    status, code = 401, "invalid_api_key"


class RateLimited(MedialaneError):
    """A key's request rate or concurrent-job cap is exceeded; ``retry_after`` seconds tells when to come back."""

    status, code = 429, "rate_limited"

    def __init__(self, message: str, *, retry_after: int, code: str | None = None) -> None:
        super().__init__(message, code=code)
        self.retry_after = retry_after
