"""Schemathesis against the live test server: the served OpenAPI document is the contract.

The schemathesis CLI runs as a child process, so the in-process ingest service keeps serving on the
session's event loop while it is being tested. It reads the document from ``/openapi.json`` (so that
route is exercised too) and sends schema-valid and malformed requests to every operation.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

# What every response must satisfy: no 5xx; every status code, content type, header and body as
# documented; malformed input (negative cases, missing required headers, undocumented methods) answered
# 4xx; no operation that the document says needs a key answering without one. positive_data_acceptance
# is left out: a schema-valid upload is random bytes, not a real image, so the server is right to refuse
# it (415 unsupported_media), and a schema cannot say "a decodable JPEG".
CHECKS = ",".join(
    [
        "not_a_server_error",
        "status_code_conformance",
        "content_type_conformance",
        "response_headers_conformance",
        "response_schema_conformance",
        "negative_data_rejection",
        "missing_required_header",
        "unsupported_method",
        "allow_header_conformance",
        "ignored_auth",
    ]
)
# `wait` holds a request open until the job ends, up to 60 s: a slow uniquify job would hold the run that
# long, so no request waits (the 200-within-wait answer has its own tests). Every uniquify job the run
# makes asks for one copy: dozens of jobs of up to 100 copies each kept the session's workers busy for
# minutes after the run and starved the tests after it (`copies` validation has its own tests).
CONFIG = f"""
hooks = "{Path(__file__).with_name("conformance_hooks.py")}"

[parameters]
"query.wait" = 0
"query.copies" = 1
"""
# Bounds the run (about a minute on 2 cores); the seed makes a failure reproducible.
MAX_EXAMPLES = 10
SEED = 6


async def index_ready(api) -> None:
    """Waits out the workers' pHash index loading at session start: its 503 is documented, but it is not
    what this test is about, and a test that may run first must not depend on it."""
    async with asyncio.timeout(60):
        while True:
            async with api.get("/v1/similar", params={"phash": "0" * 16}) as response:
                if response.status == 200:
                    return
            await asyncio.sleep(0.2)


async def test_the_live_server_conforms_to_its_openapi_document(ingest, api, api_key, tmp_path):
    await index_ready(api)
    base = str(ingest.make_url("")).rstrip("/")
    config = tmp_path / "schemathesis.toml"
    config.write_text(CONFIG)
    command = [
        sys.executable, "-m", "schemathesis.cli", "--config-file", str(config), "run", f"{base}/openapi.json",
        "--url", base,
        "--header", f"X-API-Key: {api_key}",
        "--checks", CHECKS,
        "--max-examples", str(MAX_EXAMPLES),
        "--seed", str(SEED),
        "--workers", "2",
        "--request-timeout", "30",
        "--generation-database", "none",
        # The key is the header above; fuzzed `?key=` values (the QueryKey scheme) would only add noise.
        "--generation-with-security-parameters", "false",
        "--no-color",
    ]  # fmt: skip
    child = await asyncio.create_subprocess_exec(
        *command, cwd=tmp_path, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    output, _ = await asyncio.wait_for(child.communicate(), timeout=180)
    # Failures quote request bodies (binary uploads): long lines are cut so every failure stays visible.
    report = "\n".join(line[:400] for line in output.decode(errors="replace").splitlines())
    assert child.returncode == 0, report[report.find("FAILURES"):]
