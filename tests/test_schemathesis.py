"""Schemathesis over the whole API, in process, as `st run --checks all` runs it.

Every phase runs (examples, coverage, fuzzing; stateful on Postgres, where the run is long enough to
chain operations through their OpenAPI links) with every check. The run must report no failure: no
5xx, every answer as documented (status, media type, headers, schema), every request the document
forbids refused, and every request it allows accepted.

A request the document allows may still break a rule the document cannot state: an agreement version
that is not the current one, a moment that has passed, a key already used for another request. Such
a refusal is accepted only when its problem `code` is listed below for its operation (`REFUSALS`);
any other refusal of a schema-valid request fails the run, whatever its status.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import schemathesis
from schemathesis.config._checks import NegativeDataRejectionConfig, PositiveDataAcceptanceConfig
from schemathesis.engine import Status, events, from_schema
from schemathesis.openapi.checks import RejectedPositiveData

from app.db.session import create_engine, create_session_factory
from app.main import create_app
from tests.conftest import IN_CI, START, _first_admin_key, make_settings

pytestmark = pytest.mark.slow

MAX_EXAMPLES = {"sqlite": 20, "postgres": 20}
"""Examples per operation in the fuzzing phase; with the coverage phase's own cases and the
stateful phase on Postgres the run stays within a few minutes on each database."""
STATEFUL_ON = {"postgres"}

_CURSOR = {"invalid_cursor": "a cursor the service did not issue"}
_IDEMPOTENT = {"idempotency_key_reused": "the Idempotency-Key came with another request before"}
_STATUS = {"invalid_status_transition": "the partner's current status does not allow it (R03)"}
_TERMINATED = {"partner_terminated": "a terminated partner's profile and keys are closed"}
_STANDING = {
    "partner_suspended": "a suspended partner's key writes nothing",
    "partner_terminated": "a terminated partner's key writes nothing",
}
_INACTIVE = {"partner_not_active": "the partner is not active"}
_TARGET = {
    "webhook_url_invalid": "a URL httpx can read",
    # A deployment setting, stated in the target's description: production (PARTNERS_OUTBOUND_ALLOW_PRIVATE
    # off) takes only https to globally routable hosts. The fuzzed service allows private targets.
    "webhook_target_not_https": "production takes only https targets",
    "webhook_target_not_global": "production sends only to globally routable addresses",
}
_UNPAYABLE = {
    "statement_not_approved": "only an approved statement is paid",
    "statement_already_paid": "the statement is paid already",
    "statement_in_payment": "a statement in a payout run is paid by that run",
}

_PASSWORD = {
    "password_too_short": "a password of at least 12 characters",
    "password_too_weak": "a password zxcvbn does not find easy to guess",
    "password_too_long": "a password of at most 256 characters",
}
_LINK = {"link_not_valid": "a link of a mail, used once, before it expires"}
_OWN = {"user_session_required": "a signed-in user's own route: an admin key has no account"}
_ZONE = {"time_zone_unknown": "an IANA time zone"}

REFUSALS: dict[str, dict[str, str]] = {
    # operationId -> problem code -> the rule the OpenAPI document cannot state: one that depends on
    # what is stored, on the time of the request, or on several values at once.
    "register_partner": {
        "agreement_version_not_current": "only the current agreement version can be accepted",
        "partner_already_registered": "another partner has this contact e-mail",
        "vat_id_invalid": "a VAT id valid under its country's rules",
        "brand_misspelled": "a company name that misspells the vendor's brand (R20)",
    },
    "update_partner": {
        **_TERMINATED,
        "partner_already_registered": "another partner has this contact e-mail",
        "vat_id_invalid": "a VAT id valid under its country's rules",
        "brand_misspelled": "a company name that misspells the vendor's brand (R20)",
    },
    "update_directory_profile": {
        **_TERMINATED,
        **_INACTIVE,
        "brand_misspelled": "a company name that misspells the vendor's brand (R20)",
        "field_not_editable": "a partner's key edits its own public fields only",
    },
    "approve_partner": _STATUS,
    "suspend_partner": _STATUS,
    "reinstate_partner": _STATUS,
    "terminate_partner": _STATUS,
    "create_partner_api_key": _TERMINATED,
    "rotate_partner_api_key": {**_TERMINATED, "api_key_revoked": "a revoked key cannot be rotated"},
    "accept_agreement": {
        **_TERMINATED,
        "agreement_version_not_current": "only the current agreement version can be accepted",
        "no_agreement": "no agreement is published yet",
    },
    "create_registration": {
        **_INACTIVE,
        "strong_identifier_missing": "a VAT id, a company domain or a store id (R06)",
        "free_mail_domain_only": "a free-mail domain does not identify a company (R06)",
        "own_company": "a partner never registers its own company (R22)",
        "vat_id_invalid": "a VAT id valid under its country's rules",
        "already_a_customer": "the customer bought from the vendor already (R06)",
        "already_registered_by_you": "the partner registered this customer already (R07)",
        "registered_by_another_partner": "another partner registered this customer (R07)",
        "cool_off": "the customer's previous registration ended too recently (R06)",
        "in_active_sales_process": "the vendor is in a sales process with the customer (R06)",
        "identifiers_match_several_customers": "the identifiers name different customers",
        "customer_busy": "another request is registering this customer",
    },
    "withdraw_registration": {"registration_not_open": "only a live registration can be withdrawn"},
    "request_nfr_licence": {
        **_TERMINATED,
        **_INACTIVE,
        "unknown_sku": "a SKU of the terms in force",
        "nfr_limit_reached": "free licences per product are limited (R17)",
    },
    "accept_lead_offer": {
        "offer_not_open": "the offer was decided or expired",
        "lead_offer_refused": "the partner cannot take this lead",
    },
    "decline_lead_offer": {"offer_not_open": "the offer was decided or expired"},
    "approve_directory_review": {
        "directory_review_decided": "the review was decided already",
        "company_name_not_approvable": "the company name still misspells the brand",
    },
    "reject_directory_review": {"directory_review_decided": "the review was decided already"},
    "resolve_order_flag": {"order_flag_resolved": "the flag was resolved already"},
    "replay_webhook_event": {"event_not_parked": "only a parked event is replayed"},
    "retry_webhook_delivery": {
        "webhook_delivery_in_flight": "the delivery is being sent",
        "webhook_subscription_disabled": "a disabled subscription's deliveries are not sent again",
    },
    "retry_partner_webhook_delivery": {
        "webhook_delivery_in_flight": "the delivery is being sent",
        "webhook_subscription_disabled": "a disabled subscription's deliveries are not sent again",
    },
    "ping_webhook_subscription": {"webhook_subscription_disabled": "a disabled subscription is not pinged"},
    "ping_partner_webhook_subscription": {"webhook_subscription_disabled": "a disabled subscription is not pinged"},
    "publish_agreement": {
        "accept_by_in_past": "accept_by must lie in the future",
        "accept_by_before_previous": "accept_by must not precede the previous version's",
        "agreement_version_exists": "the version is published already",
    },
    "put_payee_details": {
        **_TERMINATED,
        "iban_invalid": "an IBAN whose check digits and format are its country's",
        "bic_invalid": "a BIC of a known country",
        "bic_mismatch": "a BIC of the IBAN's country and bank",
        "vat_id_invalid": "a VAT id valid under its country's rules",
        "vat_id_required": "a VAT-registered payee gives its VAT id",
    },
    "publish_self_billing_agreement": {"self_billing_version_exists": "the version is published already"},
    "accept_self_billing_agreement": {
        **_TERMINATED,
        "self_billing_version_not_current": "only the version in force can be accepted",
    },
    "create_api_key": {"unknown_scope": "admin keys take `read`/`write`, store keys `store`"},
    "flag_sales_process": {"until_in_past": "`until` must lie in the future"},
    "list_customers": {"identifier_invalid": "the VAT id, domain or store id does not normalise"},
    "import_customers_csv": {
        "csv_header_invalid": "the CSV header names company and country",
        "csv_row_invalid": "a CSV row holds an invalid value",
        "csv_empty": "the CSV has no rows",
        "csv_unreadable": "the body is not CSV in UTF-8",
    },
    "add_program_sku": {"sku_exists": "the SKU is in every terms version already"},
    "publish_program_terms": {
        "effective_from_not_in_future": "new terms take effect in the future",
        "terms_version_overlap": "a later version takes effect first",
    },
    "preview_program_terms": {
        "effective_from_not_in_future": "draft terms take effect in the future",
        "window_invalid": "the window's quarters in order, at most the current one, at most 12",
    },
    "assign_lead": {
        "lead_exhausted": "no partner is left to offer the lead to",
        "lead_offer_refused": "the partner cannot take this lead",
        "lead_not_open": "the lead is offered or accepted already",
        **_INACTIVE,
    },
    "create_webhook_subscription": {
        **_TARGET,
        "event_type_not_for_partners": "a subscription for one partner takes the types a partner may read",
    },
    "update_webhook_subscription": {
        **_TARGET,
        "event_type_not_for_partners": "a subscription for one partner takes the types a partner may read",
    },
    "create_partner_webhook_subscription": _TARGET,
    "update_partner_webhook_subscription": _TARGET,
    "close_quarter": {
        **_IDEMPOTENT,
        "quarter_not_over": "a quarter closes once it is over",
        "previous_quarter_open": "quarters close in order",
    },
    "approve_statement": {**_IDEMPOTENT, "statement_not_draft": "only a draft statement is approved"},
    "mark_statement_paid": {**_IDEMPOTENT, **_UNPAYABLE},
    "bulk_approve_statements": {**_IDEMPOTENT, "statement_not_draft": "only a draft statement is approved"},
    "bulk_mark_statements_paid": {**_IDEMPOTENT, **_UNPAYABLE},
    "post_adjustment": {**_IDEMPOTENT, "currency_missing": "a money adjustment names its currency"},
    "create_payout_run": {
        **_IDEMPOTENT,
        "payout_run_nothing_payable": "a run pays at least one approved statement due by its date",
        "payout_debtor_not_configured": "a run needs the debtor account configured",
        "payment_date_in_past": "a run's payment date is today or later",
    },
    "confirm_payout_run": _IDEMPOTENT,
    "accept_invitation": {**_LINK, **_PASSWORD},
    "confirm_password_reset": {**_LINK, **_PASSWORD},
    "current_session": _OWN,
    "sign_out": _OWN,
    "get_account": _OWN,
    "patch_account": {
        **_OWN,
        **_ZONE,
        "notification_unknown": "a notification one can turn off",
    },
    "change_password": {**_OWN, **_PASSWORD, "password_wrong": "the password in force"},
    "start_second_factor": {
        **_OWN,
        "second_factor_vendor_only": "the second factor is the vendor's users'",
        "second_factor_on": "set up once until turned off",
    },
    "confirm_second_factor": {**_OWN, "second_factor_not_started": "a setup under way"},
    "disable_second_factor": {**_OWN, "second_factor_required_here": "a setting requires it"},
    "invite_vendor_user": {**_ZONE, "user_exists": "one address is one user"},
    "invite_partner_user": {**_ZONE, "user_exists": "one address is one user"},
    "patch_user": {
        **_ZONE,
        "role_kind_mismatch": "a role of the user's kind",
        "own_role": "a user does not change its own role",
    },
    "deactivate_user": {"own_account": "a user does not deactivate itself"},
    "retry_mail": {"mail_not_failed": "only a failed message is sent again"},
    "get_partner_invoice_pdf": {"invoice_document_not_ready": "a worker renders an invoice's PDF after issue"},
    "get_invoice_pdf": {"invoice_document_not_ready": "a worker renders an invoice's PDF after issue"},
    "credit_invoice": {
        **_IDEMPOTENT,
        "invoice_is_credit_note": "a credit note is not credited",
        "invoice_already_credited": "an invoice is credited once",
        "invoice_in_payment": "an invoice a run pays now is not corrected",
        "invoice_correction_not_issuable": "a paid statement's new invoice needs payee details",
        "invoice_correction_changes_total": "a correction never changes what was paid",
    },
    "return_payout_transfer": {
        **_IDEMPOTENT,
        "payout_run_executed": "a transfer of a run confirmed executed is not returned",
    },
}

for _operation in (  # a partner's key writes nothing while the partner is suspended or terminated
    "update_partner",
    "accept_agreement",
    "put_payee_details",
    "accept_self_billing_agreement",
    "create_partner_api_key",
    "rotate_partner_api_key",
    "create_registration",
    "withdraw_registration",
    "update_directory_profile",
    "request_nfr_licence",
    "accept_lead_offer",
    "decline_lead_offer",
    "create_partner_webhook_subscription",
    "update_partner_webhook_subscription",
    "delete_partner_webhook_subscription",
    "rotate_partner_webhook_secret",
    "retry_partner_webhook_delivery",
    "ping_partner_webhook_subscription",
):
    REFUSALS[_operation] = {**REFUSALS.get(_operation, {}), **_STANDING}

FIELD_REFUSALS: dict[str, dict[tuple[str, str], str]] = {
    # operationId -> (field, pydantic error type) -> the rule: a `validation_failed` refusal is
    # listed when every error it lists is.
    "publish_program_terms": {
        ("body.terms", "value_error"): "levels from 0 points with strictly increasing thresholds (R02)",
        ("body.terms.time_zone", "value_error"): "an IANA time zone that exists",
    },
    "preview_program_terms": {
        ("body.terms", "value_error"): "levels from 0 points with strictly increasing thresholds (R02)",
        ("body.terms.time_zone", "value_error"): "an IANA time zone that exists",
    },
}


def listed_refusal(case: Any, response: Any) -> str | None:
    """The listed rule that explains this refusal of a schema-valid request, if there is one."""
    try:
        problem = json.loads(response.content)
    except ValueError:
        return None
    if not isinstance(problem, dict) or not isinstance(problem.get("code"), str):
        return None
    operation_id = case.operation.definition.raw.get("operationId", "")
    listed = dict(REFUSALS.get(operation_id, {}))
    if case.query and "cursor" in case.query:
        listed.update(_CURSOR)
    if problem["code"] in listed:
        return listed[problem["code"]]
    if problem["code"] == "validation_failed" and problem.get("errors"):
        by_field = FIELD_REFUSALS.get(operation_id, {})
        rules = [by_field.get((error.get("field"), error.get("type"))) for error in problem["errors"]]
        if all(rules):
            return "; ".join(dict.fromkeys(r for r in rules if r))
    return None


# --- the app, its data and its callers -----------------------------------------------------------


async def _admin_key(url: str) -> str:
    engine = create_engine(url)
    try:
        return await _first_admin_key(create_session_factory(engine), START)
    finally:
        await engine.dispose()


async def _partner(url: str) -> tuple[str, str]:
    """A registered partner and its key, so that partner-only operations are fuzzed too."""
    app = create_app(make_settings(url))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            response = await client.post(
                "/v1/partners",
                json={
                    "company": "Fuzz GmbH",
                    "country": "DE",
                    "contact_name": "F",
                    "contact_email": "f@fuzz.example",
                    "accepted_agreement_version": "2026-01",
                },
            )
            assert response.status_code == 201, response.text
            return response.json()["partner"]["id"], response.json()["api_key"]["key"]


@dataclass
class Fuzzed:
    app: Any
    admin_key: str
    partner_id: str
    partner_key: str


@pytest.fixture
def fuzzed(committing_database_url: str) -> Fuzzed:
    partner_id, partner_key = asyncio.run(_partner(committing_database_url))
    admin_key = asyncio.run(_admin_key(committing_database_url))
    return Fuzzed(create_app(make_settings(committing_database_url)), admin_key, partner_id, partner_key)


def load_schema(fuzzed: Fuzzed, *, backend: str, excused: dict[str, int]) -> Any:
    """The app's schema, configured as the CI run wants it; `excused` counts the listed refusals met."""
    schema = schemathesis.openapi.from_asgi("/openapi.json", fuzzed.app)
    # Partner routes are exercised on a real partner.
    schema.config.update(parameters={"path.partner_id": fuzzed.partner_id})
    phases = ["examples", "coverage", "fuzzing"] + (["stateful"] if backend in STATEFUL_ON else [])
    schema.config.phases.update(phases=phases)
    schema.config.checks.update(included_check_names=["all"])
    schema.config.cache.enabled = False  # no state carried between runs (nor files left in the tree)
    schema.config.generation.update(max_examples=MAX_EXAMPLES[backend], deterministic=IN_CI)
    # A schema-valid request is accepted, or refused for want of a key, a permission or an object
    # (the library's default, less 409): any other refusal must be listed by its code (REFUSALS).
    schema.config.checks.positive_data_acceptance = PositiveDataAcceptanceConfig(
        expected_statuses=["2xx", "3xx", "401", "403", "404", "429", "5xx"]
    )
    # An invalid body may also be too large to read at all: 413, before validation.
    schema.config.checks.negative_data_rejection = NegativeDataRejectionConfig(
        expected_statuses=["400", "401", "403", "404", "405", "406", "409", "413", "415", "422", "428", "429", "5xx"]
    )

    keys = itertools.cycle([fuzzed.partner_key, fuzzed.admin_key])

    @schema.auth()
    class Keys:
        """The admin key everywhere; on a partner's routes, the partner's own key every other request.
        Schemathesis leaves out a case whose Authorization it removed or changed on purpose."""

        def get(self, case: Any, ctx: Any) -> str:
            return next(keys) if "{partner_id}" in case.operation.path else fuzzed.admin_key

        def set(self, case: Any, data: str, ctx: Any) -> None:
            case.headers = {**(case.headers or {}), "Authorization": f"Bearer {data}"}

    @schema.hook
    def filter_failure(context: Any, failure: Any, case: Any, response: Any) -> bool:
        if isinstance(failure, RejectedPositiveData) and (rule := listed_refusal(case, response)):
            excused[f"{case.operation.label}: {rule}"] = excused.get(f"{case.operation.label}: {rule}", 0) + 1
            return False
        return True

    return schema


@dataclass
class Report:
    failures: list[str]
    errors: list[str]
    seconds: float
    scenarios: dict[str, int]


def run(schema: Any) -> Report:
    failures: list[str] = []
    errors: list[str] = []
    scenarios: dict[str, int] = {}
    started = time.monotonic()
    for event in from_schema(schema).execute():
        if isinstance(event, events.ScenarioFinished):
            scenarios[event.phase.value] = scenarios.get(event.phase.value, 0) + 1
            if event.status == Status.FAILURE:
                failures.extend(_describe(event))
            elif event.status == Status.ERROR:
                errors.append(f"[{event.phase.value}] {event.label}: error")
        elif isinstance(event, events.NonFatalError):
            errors.append(f"{event.label}: {event.info.message}")
        elif isinstance(event, events.FatalError):
            errors.append(f"fatal: {event.exception!r}")
        elif isinstance(event, events.EngineFinished):
            failures.extend(f"after the run: {failure.title}: {failure.message}" for failure in event.failures)
    return Report(failures, errors, time.monotonic() - started, scenarios)


def _describe(event: events.ScenarioFinished) -> list[str]:
    described = []
    for case_id, checks in event.recorder.checks.items():
        for check in checks:
            if check.status != Status.FAILURE or check.failure_info is None:
                continue
            failure = check.failure_info.failure
            interaction = event.recorder.interactions.get(case_id)
            answer = ""
            if interaction is not None and interaction.response is not None:
                answer = f"\n    -> {interaction.response.status_code} {interaction.response.content[:400]!r}"
            described.append(
                f"[{event.phase.value}] {event.label}: {check.name}: {failure.title}\n    {failure.message}"
                f"\n    {check.failure_info.code_sample}{answer}"
            )
    return described


# One run of the engine covers every operation: about 2 minutes per database on a quiet machine, but
# past the suite's 300 s guard on a loaded one. The guard is for hung tests, not a time limit.
@pytest.mark.timeout(1200)
def test_api_conforms_to_its_schema(backend: str, fuzzed: Fuzzed) -> None:
    excused: dict[str, int] = {}
    report = run(load_schema(fuzzed, backend=backend, excused=excused))
    print(f"schemathesis on {backend}: {report.seconds:.0f} s, scenarios by phase {report.scenarios}")
    print("refusals excused by a listed rule:", *(f"{n} x {rule}" for rule, n in sorted(excused.items())), sep="\n  ")
    assert not report.errors, "\n".join(report.errors)
    assert not report.failures, f"{len(report.failures)} failures:\n" + "\n".join(report.failures)
    assert report.scenarios.get("fuzzing"), report.scenarios
    if backend in STATEFUL_ON:
        assert report.scenarios.get("stateful"), report.scenarios


def test_only_listed_codes_excuse_a_refusal() -> None:
    """The allow-list matches a refusal by its code (and, for a validation failure, its fields)."""

    @dataclass
    class FakeCase:
        operation: Any
        query: dict[str, Any] | None = None

    @dataclass
    class FakeOperation:
        definition: Any

    @dataclass
    class FakeDefinition:
        raw: dict[str, Any]

    @dataclass
    class FakeResponse:
        content: bytes

    def case(operation_id: str, query: dict[str, Any] | None = None) -> Any:
        return FakeCase(FakeOperation(FakeDefinition({"operationId": operation_id})), query)

    def answer(code: str, *fields: str) -> Any:
        errors = [{"field": f, "type": "value_error"} for f in fields]
        return FakeResponse(json.dumps({"code": code, "errors": errors}).encode())

    assert listed_refusal(case("register_partner"), answer("agreement_version_not_current"))
    assert not listed_refusal(case("register_partner"), answer("validation_failed", "body.country"))
    assert not listed_refusal(case("publish_agreement"), answer("agreement_version_not_current"))
    assert listed_refusal(case("list_partners", {"cursor": "abc"}), answer("invalid_cursor"))
    assert not listed_refusal(case("list_partners"), answer("invalid_cursor"))
    assert listed_refusal(case("publish_program_terms"), answer("validation_failed", "body.terms"))
    assert not listed_refusal(
        case("publish_program_terms"), answer("validation_failed", "body.terms", "body.effective_from")
    )
    assert not listed_refusal(case("register_partner"), FakeResponse(b"not json"))
