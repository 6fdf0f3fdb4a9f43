"""Property-based fuzzing of the running server from its own OpenAPI schema (schemathesis): never a 5xx.

Every operation gets a bounded number of generated requests, schema-valid and schema-violating (bodies, parameters,
uploads); each must answer below 500, and every error must carry the one JSON error shape with its own status.
Schemathesis' pytest plugin does not run on this pytest, so its per-operation Hypothesis strategies drive a plain
``@given`` loop instead.
"""

from __future__ import annotations

from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.core.result import Ok

from tests.serve.conftest import Server

EXAMPLES = 30
"""Generated requests per operation and mode: 15 operations x 2 modes x 30, under a minute in all."""


def check(case: Any) -> None:
    response = case.call(timeout=60)
    where = f"{case.method} {case.formatted_path}"
    assert response.status_code < 500, f"{where}: {response.status_code} {response.text}"
    if response.status_code >= 400:
        body = response.json()
        assert body["error"]["status"] == response.status_code, (where, body)
        assert body["error"]["message"] and "Traceback" not in body["error"]["message"], (where, body)


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=["valid", "invalid"])
def test_no_generated_request_makes_a_server_error(server: Server, mode: GenerationMode) -> None:
    schema = schemathesis.openapi.from_url(f"{server.url}/openapi.json")
    results = list(schema.get_all_operations())
    assert all(isinstance(r, Ok) for r in results), results  # the schema itself is valid
    operations = [r.ok() for r in results if isinstance(r, Ok)]
    assert len(operations) >= 14  # every route of the contract is in the schema, so every route is fuzzed
    fuzzed = []
    for operation in operations:

        @given(case=operation.as_strategy(mode))
        @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), database=None,
                  derandomize=True)  # fmt: skip
        def fuzz(case: Any) -> None:
            check(case)

        try:
            fuzz()
        except Unsatisfiable:  # nothing to violate: an operation without parameters or body (GET /api/health)
            assert mode is GenerationMode.NEGATIVE, operation.label
            continue
        fuzzed.append(operation.label)
    assert len(fuzzed) >= 10, fuzzed  # every operation that takes input was fuzzed
