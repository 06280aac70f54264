"""Property-based run over the whole API, in process, on both databases.

Schemathesis generates valid and invalid requests from the OpenAPI document and checks that no
request gets a 5xx, that every answer matches the documented status codes, media types and
schemas, and that invalid input is refused.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import schemathesis
from schemathesis import GenerationMode
from schemathesis.config._checks import PositiveDataAcceptanceConfig

from app.db.session import create_engine, create_session_factory
from app.main import create_app
from tests.conftest import IN_CI, START, _first_admin_key, make_settings

pytestmark = pytest.mark.slow
MAX_EXAMPLES = 25


async def _admin_key(url: str) -> str:
    engine = create_engine(url)
    try:
        return await _first_admin_key(create_session_factory(engine), START)
    finally:
        await engine.dispose()


@pytest.fixture
def fuzzed_app(committing_database_url: str) -> tuple[Any, str]:
    app = create_app(make_settings(committing_database_url))
    return app, asyncio.run(_admin_key(committing_database_url))


@pytest.fixture
def api_schema(fuzzed_app: tuple[Any, str]) -> Any:
    schema = schemathesis.openapi.from_asgi("/openapi.json", fuzzed_app[0])
    schema.config.generation.update(
        modes=[GenerationMode.POSITIVE, GenerationMode.NEGATIVE],
        max_examples=MAX_EXAMPLES,
        deterministic=IN_CI,
    )
    # A schema-valid request may still break a rule the schema cannot state (an agreement version
    # that is not the current one, a duplicate contact e-mail): the domain answers 409 or 422.
    schema.config.checks.positive_data_acceptance = PositiveDataAcceptanceConfig(
        expected_statuses=["2xx", "401", "403", "404", "409", "422"]
    )
    return schema


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
def test_api_conforms_to_its_schema(case: Any, fuzzed_app: tuple[Any, str]) -> None:
    _, key = fuzzed_app
    case.call_and_validate(headers={"Authorization": f"Bearer {key}"})
