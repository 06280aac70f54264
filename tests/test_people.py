"""People: invitations, passwords and sign-in by mail links read from a real SMTP server; sessions
(fixation, CSRF, idle and absolute expiry, revocation, throttling); the second factor; the role table
driving who may call each account route; notifications."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pyotp
import pytest
from sqlalchemy import select

from app.db.tables import MailMessage
from app.domain import passwords, sealed
from app.domain.rules import roles
from app.domain.rules.roles import Kind, Permission, Role
from app.routers.deps import CSRF_HEADER, SESSION_COOKIE
from tests.conftest import Api
from tests.smtp import smtp_server, smtp_settings

GOOD = "violet kettle drums at dawn"
_numbers = itertools.count(1)


@dataclass
class Browser:
    """A person's browser: its session cookie and the CSRF token of that session."""

    api: Api
    cookie: str
    csrf: str
    user: dict[str, Any]

    def _headers(self, csrf: bool = True) -> dict[str, str]:
        headers = {"Cookie": f"{SESSION_COOKIE}={self.cookie}"}
        if csrf:
            headers[CSRF_HEADER] = self.csrf
        return headers

    async def request(self, method: str, path: str, *, csrf: bool = True, **kwargs: Any) -> httpx.Response:
        return await self.api.client.request(method, path, headers=self._headers(csrf), **kwargs)

    async def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return await self.request("GET", path, **kwargs)

    async def post(self, path: str, **kwargs: Any) -> httpx.Response:
        return await self.request("POST", path, **kwargs)


@pytest.fixture(autouse=True)
def _no_cookie_jar(api: Api) -> None:
    """Each test's browsers send their own session cookie: the shared client forgets every cookie a
    response sets, once the test has read it."""

    async def forget(response: httpx.Response) -> None:
        api.client.cookies.clear()

    api.client.event_hooks["response"].append(forget)


def _use(api: Api, **settings: Any) -> None:
    for name, value in settings.items():
        setattr(api.app.state.settings, name, value)


async def sign_in(api: Api, email: str, password: str = GOOD, **extra: Any) -> Browser:
    response = await api.client.post("/v1/sessions", json={"email": email, "password": password, **extra})
    assert response.status_code == 201, response.text
    cookie = response.cookies.get(SESSION_COOKIE)
    assert cookie
    body = response.json()
    return Browser(api, cookie, body["csrf_token"], body["user"])


async def stored_link_token(api: Api, to: str) -> str:
    """The token of the newest link mailed to `to`, read from the outbox (mail off: nothing is sent)."""
    async with api.app.state.session_factory() as session:
        row = (
            await session.execute(
                select(MailMessage).where(MailMessage.to_address == to).order_by(MailMessage.id.desc()).limit(1)  # type: ignore[attr-defined]
            )
        ).scalar_one()
        text = sealed.open_sealed(api.app.state.settings, row.text_body)
    return text.split("?token=", 1)[1].split()[0]


async def make_user(
    api: Api, role: Role, partner_id: str | None = None, *, by: Browser | None = None, name: str | None = None
) -> Browser:
    """A user of `role` invited (by an admin key, or `by`), its invitation accepted, signed in."""
    email = f"user{next(_numbers)}@people.example.com"
    body = {"email": email, "role": roles.NAMES[role], **({"name": name} if name else {})}
    path = f"/v1/partners/{partner_id}/users" if partner_id else "/v1/users"
    invited = await (by.post(path, json=body) if by else api.client.post(path, json=body, headers=api.admin))
    assert invited.status_code == 201, invited.text
    token = await stored_link_token(api, email)
    accepted = await api.client.post("/v1/invitations/accept", json={"token": token, "password": GOOD})
    assert accepted.status_code == 200, accepted.text
    return await sign_in(api, email)


async def test_an_invitation_sets_a_password_then_sign_in_and_a_reset_all_by_links_read_from_real_mail(
    api: Api,
) -> None:
    async with smtp_server() as box:
        _use(api, **smtp_settings(box))
        invited = await api.client.post(
            "/v1/users", json={"email": "Ada@Qalyptus.example.com", "role": "admin", "name": "Ada"}, headers=api.admin
        )
        assert invited.status_code == 201, invited.text
        assert (invited.json()["email"], invited.json()["status"]) == ("ada@qalyptus.example.com", "invited")
        again = await api.client.post(
            "/v1/users", json={"email": "ada@qalyptus.example.com", "role": "viewer"}, headers=api.admin
        )
        assert again.status_code == 409 and again.json()["code"] == "user_exists"

        await api.drain()
        [message] = box.to("ada@qalyptus.example.com")
        assert message["Subject"] == "You are invited to the Qalyptus Partner Program"
        assert message["From"] == "Qalyptus Partner Program <partners@qalyptus.example.com>"
        assert "as admin" in box.text(message) and "Qalyptus" in box.html(message)
        token = box.link_token(message)
        assert f"https://partners.qalyptus.example.com/invitation?token={token}" in box.html(message)

        # Weak and short passwords are refused with what to fix; the link still works after a refusal.
        for password, code in (("short", "password_too_short"), ("password1234", "password_too_weak")):
            refused = await api.client.post("/v1/invitations/accept", json={"token": token, "password": password})
            assert refused.status_code == 422 and refused.json()["code"] == code, refused.text
        accepted = await api.client.post("/v1/invitations/accept", json={"token": token, "password": GOOD})
        assert accepted.status_code == 200 and accepted.json()["status"] == "active"
        spent = await api.client.post("/v1/invitations/accept", json={"token": token, "password": GOOD})
        assert spent.status_code == 409 and spent.json()["code"] == "link_not_valid"

        # Sign-in: a wrong password and an unknown address are refused alike.
        wrong = await api.client.post("/v1/sessions", json={"email": "ada@qalyptus.example.com", "password": "x" * 12})
        unknown = await api.client.post("/v1/sessions", json={"email": "nobody@qalyptus.example.com", "password": GOOD})
        assert wrong.status_code == unknown.status_code == 401
        same = {"type", "title", "status", "detail", "code"}
        assert {k: v for k, v in wrong.json().items() if k in same} == {
            k: v for k, v in unknown.json().items() if k in same
        }
        response = await api.client.post("/v1/sessions", json={"email": "ADA@qalyptus.example.com", "password": GOOD})
        assert response.status_code == 201, response.text
        cookie = response.headers["set-cookie"]
        assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Path=/" in cookie
        ada = await sign_in(api, "ada@qalyptus.example.com")
        assert (await ada.get("/v1/account")).json()["name"] == "Ada"

        # Ada invites a partner's owner: mailed in the partner's name.
        partner, _ = await api.register(company="Reseller Oy")
        owner = await ada.post(
            f"/v1/partners/{partner['id']}/users", json={"email": "eero@reseller.example.com", "role": "owner"}
        )
        assert owner.status_code == 201, owner.text
        await api.drain()
        [to_owner] = box.to("eero@reseller.example.com")
        assert "as owner of Reseller Oy" in box.text(to_owner)

        # A password reset: answered alike for an unknown address, mailed only to the account.
        asked = await api.client.post("/v1/password-resets", json={"email": "ada@qalyptus.example.com"})
        nobody = await api.client.post("/v1/password-resets", json={"email": "nobody@qalyptus.example.com"})
        assert asked.status_code == nobody.status_code == 202 and asked.json() == nobody.json()
        await api.drain()
        reset = box.to("ada@qalyptus.example.com")[-1]
        assert reset["Subject"] == "Reset your Qalyptus Partner Program password"
        assert not box.to("nobody@qalyptus.example.com")
        done = await api.client.post(
            "/v1/password-resets/confirm", json={"token": box.link_token(reset), "password": "a brand new passphrase"}
        )
        assert done.status_code == 204, done.text
        ended = await ada.get("/v1/account")  # every session of the account ended with the change
        assert ended.status_code == 401 and ended.json()["code"] == "session_ended"
        old = await api.client.post("/v1/sessions", json={"email": "ada@qalyptus.example.com", "password": GOOD})
        assert old.status_code == 401
        await sign_in(api, "ada@qalyptus.example.com", "a brand new passphrase")
        reused = await api.client.post(
            "/v1/password-resets/confirm", json={"token": box.link_token(reset), "password": "yet another passphrase"}
        )
        assert reused.status_code == 409 and reused.json()["code"] == "link_not_valid"

        # The mail log: every message, its state and attempts, never its body.
        log = await api.client.get("/v1/mail", headers=api.admin)
        assert log.status_code == 200 and log.json()["mail"] == "smtp"
        assert {m["state"] for m in log.json()["items"]} == {"sent"}
        assert all("link" not in str(m) and "token" not in str(m) for m in log.json()["items"])


async def test_a_message_the_server_refuses_is_retried_with_backoff_logged_and_never_lost(api: Api) -> None:
    async with smtp_server() as box:
        _use(api, **smtp_settings(box))
        box.refuse = 2
        invited = await api.client.post(
            "/v1/users", json={"email": "bea@qalyptus.example.com", "role": "viewer"}, headers=api.admin
        )
        assert invited.status_code == 201
        await api.drain()
        [logged] = (await api.client.get("/v1/mail", headers=api.admin)).json()["items"]
        assert (logged["state"], logged["attempts"]) == ("pending", 1) and "550" in logged["last_error"]
        await api.drain()  # not due yet: nothing is sent
        assert box.refused == 1 and not box.messages
        api.clock.at = api.clock.now() + timedelta(minutes=1)
        await api.drain()
        api.clock.at = api.clock.now() + timedelta(minutes=5)
        await api.drain()
        [message] = box.to("bea@qalyptus.example.com")
        assert box.refused == 2
        [logged] = (await api.client.get("/v1/mail", headers=api.admin)).json()["items"]
        assert (logged["state"], logged["attempts"], logged["last_error"]) == ("sent", 3, None)

        # Given up after the last attempt: kept as failed, and an admin sends it again.
        box.refuse = 100
        asked = await api.client.post("/v1/password-resets", json={"email": "bea@qalyptus.example.com"})
        assert asked.status_code == 202
        accepted = await api.client.post(
            "/v1/invitations/accept", json={"token": box.link_token(message), "password": GOOD}
        )
        assert accepted.status_code == 200
        await api.client.post("/v1/password-resets", json={"email": "bea@qalyptus.example.com"})
        for _ in range(12):
            await api.drain()
            api.clock.at = api.clock.now() + timedelta(hours=13)
        failed = (await api.client.get("/v1/mail?state=failed", headers=api.admin)).json()["items"]
        assert [(m["template"], m["attempts"]) for m in failed] == [("password_reset", 8)]
        box.refuse = 0
        retried = await api.client.post(f"/v1/mail/{failed[0]['id']}/retry", headers=api.admin)
        assert retried.status_code == 200 and retried.json()["state"] == "pending"
        await api.drain()
        assert box.to("bea@qalyptus.example.com")[-1]["Subject"] == "Reset your Qalyptus Partner Program password"


async def test_sessions_rotate_at_sign_in_need_the_csrf_token_and_end_idle_expired_signed_out_or_revoked(
    api: Api,
) -> None:
    admin = await make_user(api, Role.ADMIN)
    # Fixation: signing in again with a session cookie ends that session and gives a new id.
    again = await api.client.post(
        "/v1/sessions",
        json={"email": admin.user["email"], "password": GOOD},
        headers={"Cookie": f"{SESSION_COOKIE}={admin.cookie}"},
    )
    assert again.status_code == 201
    fresh = again.cookies.get(SESSION_COOKIE)
    assert fresh and fresh != admin.cookie
    assert (await admin.get("/v1/account")).status_code == 401
    admin = Browser(api, fresh, again.json()["csrf_token"], again.json()["user"])

    # CSRF: missing or wrong on a change is 403; reads need none.
    missing = await admin.request("PATCH", "/v1/account", csrf=False, json={"name": "Ada"})
    assert missing.status_code == 403 and missing.json()["code"] == "csrf_failed"
    forged = await api.client.patch(
        "/v1/account", json={"name": "Ada"}, headers={"Cookie": f"{SESSION_COOKIE}={admin.cookie}", CSRF_HEADER: "x"}
    )
    assert forged.status_code == 403 and forged.json()["code"] == "csrf_failed"
    assert (await admin.request("PATCH", "/v1/account", json={"name": "Ada"})).status_code == 200
    assert (await admin.get("/v1/account", csrf=False)).status_code == 200

    # Idle: a request within the idle time keeps it; past it the session is over.
    idle = api.app.state.settings.session_idle_minutes
    api.clock.at = api.clock.now() + timedelta(minutes=idle - 1)
    assert (await admin.get("/v1/account")).status_code == 200
    api.clock.at = api.clock.now() + timedelta(minutes=idle - 1)
    assert (await admin.get("/v1/account")).status_code == 200
    api.clock.at = api.clock.now() + timedelta(minutes=idle + 1)
    expired = await admin.get("/v1/account")
    assert expired.status_code == 401 and expired.json()["code"] == "session_expired"

    # Absolute: however active, it ends.
    admin = await sign_in(api, admin.user["email"])
    hours = api.app.state.settings.session_absolute_hours
    for _ in range(hours * 60 // (idle - 1) + 1):
        api.clock.at = api.clock.now() + timedelta(minutes=idle - 1)
        response = await admin.get("/v1/account")
        if response.status_code != 200:
            break
    assert response.status_code == 401 and response.json()["code"] == "session_expired"

    # Signed out, and revoked by deactivation.
    admin = await sign_in(api, admin.user["email"])
    out = await admin.request("DELETE", "/v1/sessions/current")
    assert out.status_code == 204
    assert (await admin.get("/v1/account")).json()["code"] == "session_ended"
    admin = await sign_in(api, admin.user["email"])
    viewer = await make_user(api, Role.VIEWER)
    gone = await admin.post(f"/v1/users/{viewer.user['id']}/deactivate")
    assert gone.status_code == 200 and gone.json()["status"] == "deactivated"
    assert (await viewer.get("/v1/account")).status_code == 401
    refused = await api.client.post("/v1/sessions", json={"email": viewer.user["email"], "password": GOOD})
    assert refused.status_code == 403 and refused.json()["code"] == "user_deactivated"


async def test_failed_sign_ins_are_throttled_per_account_and_per_address_and_audited(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    viewer = await make_user(api, Role.VIEWER)
    email, limit = viewer.user["email"], api.app.state.settings.sign_in_limit
    for _ in range(limit):
        wrong = await api.client.post("/v1/sessions", json={"email": email, "password": "not the password!"})
        assert wrong.status_code == 401
    # Past the limit even the right password waits: a guesser learns nothing.
    throttled = await api.client.post("/v1/sessions", json={"email": email, "password": GOOD})
    assert throttled.status_code == 429 and int(throttled.headers["retry-after"]) > 0
    api.clock.at = api.clock.now() + timedelta(seconds=api.app.state.settings.sign_in_window_seconds + 1)
    assert (await api.client.post("/v1/sessions", json={"email": email, "password": GOOD})).status_code == 201
    audit = (
        await api.client.get("/v1/audit-events", params={"action": "user.sign_in_failed"}, headers=api.admin)
    ).json()
    assert len(audit["items"]) == limit

    # An unknown account takes the path a known one does: one hash verified (a dummy), both counters.
    calls: list[bool] = []
    real = passwords.verify

    def counted(password: str, hashed: str | None, profile: str = "standard") -> bool:
        calls.append(hashed is None)
        return real(password, hashed, profile)

    monkeypatch.setattr(passwords, "verify", counted)
    for address in (email, "nobody@people.example.com"):
        refused = await api.client.post("/v1/sessions", json={"email": address, "password": "not the password!"})
        assert refused.status_code == 401 and refused.json()["code"] == "sign_in_failed"
    assert calls == [False, True]

    # Per address: many accounts guessed from one client are throttled too.
    for n in range(limit * 5):
        await api.client.post("/v1/sessions", json={"email": f"guess{n}@people.example.com", "password": "x" * 12})
    blocked = await api.client.post("/v1/sessions", json={"email": "fresh@people.example.com", "password": "x" * 12})
    assert blocked.status_code == 429


async def test_the_second_factor_takes_a_code_once_and_a_recovery_code_once(api: Api) -> None:
    admin = await make_user(api, Role.ADMIN)
    started = await admin.post("/v1/account/second-factor")
    assert started.status_code == 201 and started.json()["uri"].startswith("otpauth://totp/")
    totp = pyotp.TOTP(started.json()["secret"])
    wrong = await admin.post("/v1/account/second-factor/confirm", json={"code": "000000"})
    assert wrong.status_code == 422
    confirmed = await admin.post("/v1/account/second-factor/confirm", json={"code": totp.at(api.clock.now())})
    assert confirmed.status_code == 200, confirmed.text
    codes = confirmed.json()["recovery_codes"]
    assert len(codes) == 10 and (await admin.get("/v1/account")).json()["second_factor"]

    email = admin.user["email"]
    needed = await api.client.post("/v1/sessions", json={"email": email, "password": GOOD})
    assert needed.status_code == 401 and needed.json()["code"] == "second_factor_required"
    api.clock.at = api.clock.now() + timedelta(seconds=30)
    code = totp.at(api.clock.now())
    await sign_in(api, email, code=code)
    reused = await api.client.post("/v1/sessions", json={"email": email, "password": GOOD, "code": code})
    assert reused.status_code == 401 and reused.json()["code"] == "second_factor_wrong"
    await sign_in(api, email, code=codes[0])
    once = await api.client.post("/v1/sessions", json={"email": email, "password": GOOD, "code": codes[0]})
    assert once.status_code == 401

    # A setting requires it of the vendor's users: one without it may only set it up.
    viewer = await make_user(api, Role.VIEWER)
    _use(api, require_second_factor=True)
    blocked = await viewer.get("/v1/users")
    assert blocked.status_code == 403 and blocked.json()["code"] == "second_factor_setup_required"
    assert (await viewer.post("/v1/account/second-factor")).status_code == 201
    sales = await make_user(api, Role.SALES, (await api.register())[0]["id"])
    assert (await sales.get("/v1/account")).status_code == 200  # a partner's user is not asked


# --- the role table, route by route ---------------------------------------------------------------------


@dataclass(frozen=True)
class Call:
    name: str
    method: str
    path: str
    permission: Permission
    partner: str | None
    """Whose data: a partner id, or None for the program's."""
    invites: Role | None = None
    body: dict[str, Any] | None = None


async def test_every_account_route_answers_each_role_as_the_role_table_says(api: Api) -> None:
    """Each role of each kind calls every account route, on its own partner and another: allowed where
    the table allows (2xx), refused elsewhere (403, or 404 for another partner's data): 0 breaches."""
    a = (await api.register(company="Alpha Partners"))[0]["id"]
    b = (await api.register(company="Beta Partners"))[0]["id"]
    people = {role: await make_user(api, role, a if roles.KIND_OF[role] is Kind.PARTNER else None) for role in Role}
    b_sales = await make_user(api, Role.SALES, b)
    a_sales = await make_user(api, Role.SALES, a)  # a colleague: what one may do to oneself differs

    def calls() -> list[Call]:
        n = next(_numbers)
        return [
            Call("list vendor users", "GET", "/v1/users", Permission.VENDOR_USERS_READ, None),
            Call(
                "invite a viewer", "POST", "/v1/users", Permission.VENDOR_USERS_WRITE, None, Role.VIEWER,
                {"email": f"v{n}@people.example.com", "role": "viewer"},
            ),
            Call("list A's team", "GET", f"/v1/partners/{a}/users", Permission.TEAM_READ, a),
            Call("list B's team", "GET", f"/v1/partners/{b}/users", Permission.TEAM_READ, b),
            Call(
                "invite to A", "POST", f"/v1/partners/{a}/users", Permission.TEAM_WRITE, a, Role.SALES,
                {"email": f"a{n}@people.example.com", "role": "sales"},
            ),
            Call(
                "invite to B", "POST", f"/v1/partners/{b}/users", Permission.TEAM_WRITE, b, Role.SALES,
                {"email": f"b{n}@people.example.com", "role": "sales"},
            ),
            Call("read A's sales", "GET", f"/v1/users/{a_sales.user['id']}", Permission.TEAM_READ, a),
            Call("read B's sales", "GET", f"/v1/users/{b_sales.user['id']}", Permission.TEAM_READ, b),
            Call("read the mail log", "GET", "/v1/mail", Permission.MAIL_LOG_READ, None),
            Call("send a message again", "POST", f"/v1/mail/{message}/retry", Permission.SETTINGS_WRITE, None),
            Call(
                "rename A's sales", "PATCH", f"/v1/users/{a_sales.user['id']}", Permission.TEAM_WRITE, a,
                body={"name": f"Sam {n}"},
            ),
            Call(
                "rename B's sales", "PATCH", f"/v1/users/{b_sales.user['id']}", Permission.TEAM_WRITE, b,
                body={"name": f"Sue {n}"},
            ),
            Call("read one's session", "GET", "/v1/sessions/current", Permission.NOTIFICATIONS_OWN, None),
            Call("read one's account", "GET", "/v1/account", Permission.NOTIFICATIONS_OWN, None),
            Call(
                "change one's account", "PATCH", "/v1/account", Permission.NOTIFICATIONS_OWN, None,
                body={"notifications": {"lead_offered": n % 2 == 0}},
            ),
        ]  # fmt: skip

    # A message that is not failed: a role that may send one again is refused by the rule (409), not
    # by the table.
    message = (await api.client.get("/v1/mail", headers=api.admin)).json()["items"][0]["id"]
    breaches, checked = [], 0
    for role, browser in people.items():
        own = a if roles.KIND_OF[role] is Kind.PARTNER else None
        for call in calls():
            own_route = call.permission is Permission.NOTIFICATIONS_OWN  # the user's own account: no partner's
            allowed = roles.may(role, call.permission) and (own_route or roles.may_act_for(role, own, call.partner))
            if call.invites is not None:
                allowed = allowed and roles.may_invite(role, call.invites)
            response = await browser.request(call.method, call.path, json=call.body)
            checked += 1
            let_through = response.status_code not in (401, 403, 404)
            done = 200 <= response.status_code < 300 or call.name == "send a message again"
            if allowed != let_through or response.status_code >= 500 or (allowed and not done):
                breaches.append((role.value, call.name, response.status_code, response.text[:200]))
    assert breaches == [] and checked == len(Role) * 15

    # Deactivating: who manages the team may; a deactivated user's session reaches nothing.
    victim = await make_user(api, Role.PARTNER_FINANCE, a)
    refused = await people[Role.SALES].post(f"/v1/users/{victim.user['id']}/deactivate")
    assert refused.status_code == 403
    other_partner = await b_sales.post(f"/v1/users/{victim.user['id']}/deactivate")
    assert other_partner.status_code == 404
    done = await people[Role.OWNER].post(f"/v1/users/{victim.user['id']}/deactivate")
    assert done.status_code == 200
    for path in ("/v1/account", f"/v1/partners/{a}/users", "/v1/users"):
        assert (await victim.get(path)).status_code == 401

    # A suspended partner's users read, and change nothing but their own account.
    suspended = await api.client.post(f"/v1/partners/{a}/suspend", json={"reason": "audit"}, headers=api.admin)
    assert suspended.status_code == 200, suspended.text
    owner = people[Role.OWNER]
    assert (await owner.get(f"/v1/partners/{a}/users")).status_code == 200
    frozen = await owner.post(f"/v1/partners/{a}/users", json={"email": "late@people.example.com", "role": "sales"})
    assert frozen.status_code == 403 and frozen.json()["code"] == "partner_suspended"
    assert (await owner.request("PATCH", "/v1/account", json={"name": "Still me"})).status_code == 200
    reinstated = await api.client.post(f"/v1/partners/{a}/reinstate", json={"reason": "ok"}, headers=api.admin)
    assert reinstated.status_code == 200, reinstated.text

    # A partner's key is no way into accounts; a terminated partner's users are signed out for good.
    keyed = await api.client.get("/v1/account", headers=api.bearer((await api.register())[1]))
    assert keyed.status_code == 403
    terminated = await api.client.post(f"/v1/partners/{b}/terminate", json={"reason": "left"}, headers=api.admin)
    assert terminated.status_code == 200, terminated.text
    assert (await b_sales.get("/v1/account")).status_code == 401
    refused = await api.client.post("/v1/sessions", json={"email": b_sales.user["email"], "password": GOOD})
    assert refused.status_code == 403 and refused.json()["code"] == "partner_terminated"
    assert "terminated" in refused.json()["detail"]


async def test_a_role_change_is_for_who_may_invite_to_both_roles_and_never_ones_own(api: Api) -> None:
    a = (await api.register())[0]["id"]
    owner = await make_user(api, Role.OWNER, a)
    sales = await make_user(api, Role.SALES, a, by=owner)
    promoted = await owner.request("PATCH", f"/v1/users/{sales.user['id']}", json={"role": "finance"})
    assert promoted.status_code == 200 and promoted.json()["role"] == "finance"
    own = await owner.request("PATCH", f"/v1/users/{owner.user['id']}", json={"role": "sales"})
    assert own.status_code == 409 and own.json()["code"] == "own_role"
    vendor = await owner.request("PATCH", f"/v1/users/{sales.user['id']}", json={"role": "admin"})
    assert vendor.status_code == 422
    manager = await make_user(api, Role.PARTNER_MANAGER)
    admin_refused = await manager.post("/v1/users", json={"email": "x@people.example.com", "role": "admin"})
    assert admin_refused.status_code == 403 and admin_refused.json()["code"] == "role_not_allowed"
    audit = (await api.client.get("/v1/audit-events", params={"action": "user.updated"}, headers=api.admin)).json()
    assert any(e["after"]["role"] == "partner_finance" for e in audit["items"])


# --- notifications -------------------------------------------------------------------------------------


async def test_notifications_reach_the_roles_they_concern_and_each_can_be_turned_off(api: Api) -> None:
    async with smtp_server() as box:
        _use(api, **smtp_settings(box))
        partner, key = await api.register(company="Gamma GmbH", contact_email="owner@gamma.example.com")
        await api.drain()
        # Approved (automatically, as it registered): its contact is invited as its first owner.
        [invitation] = box.to("owner@gamma.example.com")
        assert "as owner of Gamma GmbH" in box.text(invitation)
        accepted = await api.client.post(
            "/v1/invitations/accept", json={"token": box.link_token(invitation), "password": GOOD}
        )
        assert accepted.status_code == 200, accepted.text
        owner = await sign_in(api, "owner@gamma.example.com")
        sales = await make_user(api, Role.SALES, partner["id"], by=owner)
        finance = await make_user(api, Role.PARTNER_FINANCE, partner["id"], by=owner)
        await api.drain()
        box.messages.clear()

        # Payee details changed: a security notice to the owners only.
        details = {
            "legal_name": "Gamma GmbH",
            "address_line1": "Hohe Straße 1",
            "postal_code": "50667",
            "city": "Köln",
            "country": "DE",
            "iban": "DE89370400440532013000",
            "bic": "COBADEFFXXX",
            "vat_id": "DE136695976",
            "vat_registered": True,
        }
        put = await api.client.put(f"/v1/partners/{partner['id']}/payee-details", json=details, headers=api.bearer(key))
        assert put.status_code == 201, put.text
        await api.drain()
        assert [m["To"] for m in box.messages] == ["owner@gamma.example.com"]
        assert box.messages[0]["Subject"] == "Security notice: Gamma GmbH's payee details changed"
        box.messages.clear()

        # A level change is told to every user of the partner, but the one who turned it off.
        off = await sales.request("PATCH", "/v1/account", json={"notifications": {"level_changed": False}})
        assert off.status_code == 200 and off.json()["notifications_off"] == ["level_changed"]
        bad = await sales.request("PATCH", "/v1/account", json={"notifications": {"invitation": False}})
        assert bad.status_code == 422 and bad.json()["code"] == "notification_unknown"
        points = await api.client.post(
            f"/v1/partners/{partner['id']}/adjustments",
            json={"kind": "points", "amount": 100_000, "reason": "migrated from the old program"},
            headers=api.admin,
        )
        assert points.status_code == 201, points.text
        await api.drain()
        told = sorted(m["To"] for m in box.messages)
        assert told == sorted([owner.user["email"], finance.user["email"]])
        assert all("Gamma GmbH is now" in m["Subject"] for m in box.messages)


def test_the_role_table_people_read_is_the_one_the_code_checks() -> None:
    text = (Path(__file__).resolve().parent.parent / "docs" / "roles.md").read_text()
    shown = text.split("<!-- roles:begin -->\n", 1)[1].split("<!-- roles:end -->", 1)[0]
    assert shown == roles.markdown_table()
