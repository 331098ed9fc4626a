"""Typed keys of what the app factory puts on the application."""

from __future__ import annotations

from aiohttp import web

from ingest.auth import Guard
from ingest.publisher import Publisher
from ingest.status import JobStatus, StatusWatcher
from ingest.workers import Workers
from schemas.settings import Settings
from adapters.objects import ObjectStore

SETTINGS = web.AppKey("settings", Settings)
STORE = web.AppKey("store", ObjectStore)
PUBLISHER = web.AppKey("publisher", Publisher)
WATCHER = web.AppKey("watcher", StatusWatcher)
JOB_STATUS = web.AppKey("job_status", JobStatus)
WORKERS = web.AppKey("workers", Workers)
GUARD = web.AppKey("guard", Guard)
