"""Result documents as a job's view shows them: read back from the object store, where the job's stage
wrote each one before reporting it. The status table keeps only their object keys (schemas/job_state.py)."""

from __future__ import annotations

import asyncio
import threading
from collections import OrderedDict
from typing import Any

from adapters.objects import ObjectStore
from schemas.messages import Status
from schemas.views import JobView

# Documents of recent jobs, which clients poll and wait on; a metadata document is a few to tens of KB.
KEPT = 512


class ResultDocuments:
    """Fills a view's ``result`` from the store. Documents never change once written (a redelivery writes the
    same one), so the most recent ``kept`` are kept in memory."""

    def __init__(self, store: ObjectStore, kept: int = KEPT) -> None:
        self.store = store
        self.kept = kept
        self.cache: OrderedDict[str, Any] = OrderedDict()
        self.lock = threading.Lock()

    async def with_documents(self, view: JobView) -> JobView:
        """``view`` with every completed op's document in ``result``."""
        wanted = {op: outcome.object_key for op, outcome in view.outcomes.items()
                  if outcome.status is Status.COMPLETED and outcome.object_key and op not in view.result}  # fmt: skip
        if not wanted:
            return view
        documents = await asyncio.gather(*(asyncio.to_thread(self.document, key) for key in wanted.values()))
        return view.model_copy(update={"result": {**view.result, **dict(zip(wanted, documents))}})

    def document(self, key: str) -> Any:
        with self.lock:
            if key in self.cache:
                self.cache.move_to_end(key)
                return self.cache[key]
        document = self.store.get_json(key)
        with self.lock:
            self.cache[key] = document
            if len(self.cache) > self.kept:
                self.cache.popitem(last=False)
        return document
