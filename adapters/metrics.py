"""Prometheus metrics every medialane process shares: its own registry (each ingest app and each worker
process serves only its own numbers at ``/metrics``) and the object store's calls, timed by a wrapper
around the ObjectStore so that no caller changes.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Histogram, generate_latest

from adapters.objects import ObjectStore

# The ObjectStore methods that each make requests of their own; the others (put_json, get_json_or_none...)
# call these through ``self``, so every request is timed once.
STORE_CALLS = ("ensure_bucket", "ping", "put_bytes", "get_bytes", "open", "put_file", "delete", "list", "list_page")
# Object-store calls take milliseconds to seconds; ops up to the exiftool timeout; jobs up to minutes.
STORE_BUCKETS = (0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60, 120, 300)
CONTENT_TYPE = CONTENT_TYPE_LATEST


def exposition(registry: CollectorRegistry) -> bytes:
    return generate_latest(registry)


def outcome_of(exc: BaseException) -> str:
    """A failed call's label: the S3 error code (NoSuchKey...) when the store answered, else the exception's class."""
    return str(getattr(exc, "code", None) or type(exc).__name__)


def instrument_store(store: ObjectStore, registry: CollectorRegistry) -> ObjectStore:
    """``store``, its calls timed into ``medialane_object_store_seconds{call, outcome}`` of ``registry``."""
    seconds = Histogram(
        "medialane_object_store_seconds", "Object-store calls by method and outcome (ok, or the error code).",
        ["call", "outcome"], registry=registry, buckets=STORE_BUCKETS,
    )  # fmt: skip
    for name in STORE_CALLS:
        setattr(store, name, _timed(getattr(store, name), name, seconds))
    return store


def _timed(call: Callable, name: str, seconds: Histogram) -> Callable:
    @functools.wraps(call)
    def timed(*args, **kwargs):
        start = time.perf_counter()
        outcome = "ok"
        try:
            return call(*args, **kwargs)
        except BaseException as exc:
            outcome = outcome_of(exc)
            raise
        finally:
            seconds.labels(name, outcome).observe(time.perf_counter() - start)

    return timed
