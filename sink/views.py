"""The worker's web pages: ``GET /jobs/{job_id}`` from the status table (Faust routes the request to the worker
that owns the job's partition, so any worker can be asked; a deleted job's 404 says ``job_deleted``), with the
job's result documents read from the object store unless ``?documents=false`` (the ingest service reads them
itself); ``GET /similar`` from this worker's replica of the pHash index, and ``GET /ready``.
"""

from __future__ import annotations

from faust.web import Request, Response, View

from adapters.results import ResultDocuments
from adapters.similar_query import parse_query
from adapters.worker_app import WorkerApp
from schemas import tables, topics
from schemas.errors import InvalidParameter
from schemas.views import ErrorBody, JobView
from sink.similar import ReplicaFollower


def register(app: WorkerApp, similar_images: ReplicaFollower) -> None:
    status_table = app.table_of(tables.STATUS)
    deleted = app.table_of(tables.DELETED)
    documents = ResultDocuments(app.store)

    def recovering() -> bool:
        """Partitions are moving, or this worker's tables are still replaying their changelogs: its tables may
        hold an older state of a job, or none, and its streams are paused."""
        return app.rebalancing or not app.tables.recovery.completed.is_set()

    @app.page("/similar")
    class SimilarImagesView(View):
        """This worker's replica answers alone: every replica holds every hash."""

        async def get(self, request: Request) -> Response:
            if not similar_images.ready.is_set():
                return self.json(error_body("the pHash index is still loading", "index_not_ready"), status=503)
            try:
                found = similar_images.replica.search(parse_query(request.query))
            except InvalidParameter as exc:
                return self.json(error_body(exc.message, exc.code), status=exc.status)
            return self.json(found.model_dump(mode="json"))

    @app.page("/ready")
    class Readiness(View):
        """200 once this worker has its partitions and its tables, with the partitions it serves (jobs it takes,
        job lookups it answers: the ingest service's readiness needs every one served); until then 503."""

        async def get(self, request: Request) -> Response:
            if recovering():
                return self.json(error_body("the worker is recovering its tables", "table_recovering"), status=503)
            serves = {topic.name: sorted(app.active_partitions(topic)) for topic in (topics.JOBS, topics.STATUS)}
            return self.json({"ready": True, "partitions": serves})

    @app.page("/jobs/{job_id}")
    class JobLookup(View):
        @app.table_route(table=status_table, match_info="job_id")
        async def get(self, request: Request, job_id: str) -> Response:
            # 503 tells the caller to ask again rather than read a step back in time.
            if recovering():
                return self.json(error_body("the status table is recovering", "table_recovering"), status=503)
            document = status_table.get(job_id.encode())
            if document is None:
                # Deleted, as opposed to not yet folded into the table: the deletion's answer waits for this one
                # (ingest/deletion.py), since no status event can bring a job back once its deletion is kept.
                code = "job_deleted" if job_id.encode() in deleted else "job_not_found"
                return self.json(error_body(f"no job {job_id}", code), status=404)
            if request.query.get("documents") != "false":
                view = await documents.with_documents(JobView.model_validate_json(document))
                document = view.model_dump_json().encode()
            return self.bytes(document, content_type="application/json")


def error_body(message: str, code: str) -> dict:
    return ErrorBody(error=message, code=code).model_dump()
