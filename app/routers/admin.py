"""Admin-only resources: admin and store keys, agreement versions, the audit log, program settings."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, status
from pydantic import StringConstraints

from app.domain import agreements, api_keys, audit, program
from app.errors import problem_responses
from app.routers import convert
from app.routers.deps import AdminRead, AdminWrite, ClockDep, SessionDep, context
from app.routers.fields import Cursor, IncludeRevoked, KeyPath, UtcDatetime, page_size
from app.routers.links import link, links
from app.routers.schemas.agreements import Agreement, AgreementList, AgreementPublication
from app.routers.schemas.keys import AdminKeyRequest, IssuedServiceApiKey, ServiceApiKey, ServiceApiKeyList
from app.routers.schemas.program import AuditEvent, AuditPage, ProgramSettings, ProgramSettingsUpdate

router = APIRouter(prefix="/v1")
Filter = Annotated[str, StringConstraints(max_length=100, pattern=r"^[A-Za-z0-9_.:\-]+$")]

# The audit log's filters: its list and its CSV export take the same ones.
AuditActor = Annotated[
    Filter | None, Query(description="Only the events by this actor: `admin:<key id>`, `partner:<id>` or `public`.")
]
AuditAction = Annotated[Filter | None, Query(description="Only the events of this action, e.g. `partner.suspend`.")]
AuditObjectType = Annotated[
    Filter | None, Query(description="Only the events about this kind of object, e.g. `partner`, `statement`.")
]
AuditObjectId = Annotated[
    Filter | None, Query(description="Only the events about the object with this id (with `object_type`).")
]
AuditSince = Annotated[UtcDatetime | None, Query(description="Only the events at or after this time.")]
AuditUntil = Annotated[UtcDatetime | None, Query(description="Only the events before this time (exclusive).")]


@router.get(
    "/api-keys",
    tags=["api keys"],
    responses=problem_responses(401, 403, 422),
    summary="List admin and store keys",
)
async def list_api_keys(
    session: SessionDep, _admin: AdminRead, include_revoked: IncludeRevoked = False
) -> ServiceApiKeyList:
    """Admin (read). Partner keys are listed under their partner."""
    rows = await api_keys.listing(session, kinds=["admin", "store"], include_revoked=include_revoked)
    return ServiceApiKeyList(items=[convert.service_key(r) for r in rows])


@router.post(
    "/api-keys",
    status_code=status.HTTP_201_CREATED,
    tags=["api keys"],
    responses={
        **problem_responses(401, 403, 422),
        **links(201, revoke_api_key=link("revoke_api_key", key_id="$response.body#/id")),
    },
    summary="Create an admin or store key",
)
async def create_api_key(
    body: AdminKeyRequest,
    request: Request,
    session: SessionDep,
    clock: ClockDep,
    admin: AdminWrite,
) -> IssuedServiceApiKey:
    """Admin (write). The new key is shown this once."""
    issued = await api_keys.issue(
        session,
        context(request, admin, clock),
        kind=body.kind,
        name=body.name,
        scopes=body.scopes,
    )
    return convert.issued_service_key(issued.key, issued.plaintext)


@router.delete(
    "/api-keys/{key_id}",
    tags=["api keys"],
    responses=problem_responses(401, 403, 404, 422),
    summary="Revoke a key",
)
async def revoke_api_key(
    key_id: KeyPath,
    request: Request,
    session: SessionDep,
    clock: ClockDep,
    admin: AdminWrite,
) -> ServiceApiKey:
    """Admin (write). Revokes an admin or store key; revoking twice changes nothing."""
    row = await api_keys.revoke(session, context(request, admin, clock), key_id, kinds=["admin", "store"])
    return convert.service_key(row)


@router.get("/agreements", tags=["agreements"], summary="List agreement versions")
async def list_agreements(session: SessionDep) -> AgreementList:
    """Public. Every published version, oldest first."""
    return AgreementList(items=[convert.agreement(v) for v in await agreements.versions(session)])


@router.get(
    "/agreements/current",
    tags=["agreements"],
    responses=problem_responses(404),
    summary="The current agreement",
)
async def get_current_agreement(session: SessionDep, clock: ClockDep) -> Agreement:
    """Public. The version a registering partner must accept."""
    return convert.agreement(await agreements.current(session, clock.now()))


@router.post(
    "/agreements",
    status_code=status.HTTP_201_CREATED,
    tags=["agreements"],
    responses=problem_responses(401, 403, 409, 422),
    summary="Publish an agreement version",
)
async def publish_agreement(
    body: AgreementPublication,
    request: Request,
    session: SessionDep,
    clock: ClockDep,
    admin: AdminWrite,
) -> Agreement:
    """Admin (write). Published now; partners must accept it by `accept_by`."""
    row = await agreements.publish(
        session,
        context(request, admin, clock),
        version=body.version,
        title=body.title,
        url=str(body.url) if body.url else None,
        accept_by=body.accept_by,
    )
    return convert.agreement(row)


@router.get(
    "/audit-events",
    tags=["audit"],
    responses=problem_responses(401, 403, 422),
    summary="Read the audit log",
)
async def list_audit_events(
    session: SessionDep,
    _admin: AdminRead,
    actor: AuditActor = None,
    action: AuditAction = None,
    object_type: AuditObjectType = None,
    object_id: AuditObjectId = None,
    since: AuditSince = None,
    until: AuditUntil = None,
    cursor: Cursor = None,
    limit: Annotated[int, page_size(200)] = 50,
) -> AuditPage:
    """Admin (read). Newest first; filters combine."""
    rows = await audit.search(
        session,
        actor=actor,
        action=action,
        object_type=object_type,
        object_id=object_id,
        since=since,
        until=until,
        before_id=convert.decode_int_cursor(cursor),
        limit=limit + 1,
    )
    return AuditPage(**convert.id_page(rows, limit, AuditEvent))


@router.get(
    "/program/settings",
    tags=["program"],
    responses=problem_responses(401, 403),
    summary="Read program settings",
)
async def get_program_settings(session: SessionDep, _admin: AdminRead) -> ProgramSettings:
    """Admin (read)."""
    return ProgramSettings.model_validate(await program.settings(session), from_attributes=True)


@router.patch(
    "/program/settings",
    tags=["program"],
    responses=problem_responses(401, 403, 422),
    summary="Change program settings",
)
async def update_program_settings(
    body: ProgramSettingsUpdate,
    request: Request,
    session: SessionDep,
    clock: ClockDep,
    admin: AdminWrite,
) -> ProgramSettings:
    """Admin (write). Audited."""
    row = await program.update_settings(session, context(request, admin, clock), auto_approve=body.auto_approve)
    return ProgramSettings.model_validate(row, from_attributes=True)
