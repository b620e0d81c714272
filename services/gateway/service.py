"""The gateway: the HTTP JSON API. It owns nothing durable; every route authenticates,
seals personal data for the service that owns it, and delegates by RPC."""

from __future__ import annotations

import io
from datetime import datetime, timezone
from urllib.parse import quote

import segno
from eventlet import tpool
from nameko.events import BROADCAST
from werkzeug.wrappers import Response

from services.gateway import exports
from services.gateway.api import bearer_token, body_of, client_of, endpoint, json_response
from services.gateway.join_infos import JoinInfoCache
from services.gateway.pages import page
from services.gateway.sessions import SessionCache
from services.gateway.tls import http
from services.gateway.waiter import WaiterProvider
from shared.config import settings
from shared.consent import CONSENT_TEXT, CONSENT_VERSION
from shared.crypto import crypto
from shared.errors import Conflict, IdentityRejected, InvalidInput, NotFound
from shared.events import JOIN_ANSWERS
from shared.expiring import Memory
from shared.handling import ContractHandler
from shared.health import HEALTH_KIT_TZ, rule_labels
from shared.heap import SettledHeap
from shared.ledger_filters import described, needs_health, parse_filters
from shared.rpc import Rpc
from shared.sms import sms_sender
from shared.validation import validate_fields, validate_phone

JOIN_FIELDS = ("name", "id_type", "id_number", "phone", "consent", "consent_version")
APPLICATION_FIELDS = (
    "org_name", "org_address", "admin_name", "admin_id_type", "admin_id_number", "admin_phone", "ends_on",
)
# which field a Health Kit rejection points at
REJECTED_FIELD = {"phone_mismatch": "phone", "name_mismatch": "name", "not_found": "id_number"}
WAIT_SECONDS = 5.0


def _broadcast(event_type: str):
    """Every instance hears every such event (of any purpose, for a routed one)."""
    return ContractHandler.decorator(event_type, handler_type=BROADCAST, reliable_delivery=False)


class GatewayService:
    name = "gateway"

    org = Rpc("org")
    verify = Rpc("verify")
    member = Rpc("member")
    healthsync = Rpc("healthsync")
    waiter = WaiterProvider()
    sessions = Memory(lambda: SessionCache(settings().session_cache_seconds))
    join_infos = Memory(lambda: JoinInfoCache(settings().join_info_cache_seconds))
    heap = SettledHeap()

    # -- events that end a wait ---------------------------------------------------

    @_broadcast("verify.challenge_sent")
    def on_challenge_sent(self, payload):
        self.waiter.deliver(("challenge", payload["data"]["challenge_id"]), {"sent": payload["data"]})

    @_broadcast("verify.identity_rejected")
    def on_identity_rejected(self, payload):
        self.waiter.deliver(("challenge", payload["data"]["challenge_id"]), {"rejected": payload["data"]})

    @_broadcast("org.ledger_activated")
    def on_ledger_activated(self, payload):
        self.waiter.deliver(("ledger_activated", payload["data"]["ledger_id"]), payload["data"])

    @_broadcast("org.ledger_closed")
    def on_ledger_closed(self, payload):
        self.join_infos.forget_ledger(payload["data"]["ledger_id"])
        self.waiter.deliver(("ledger_closed", payload["data"]["ledger_id"]), payload["data"])

    @_broadcast("org.admin_added")
    def on_admin_added(self, payload):
        data = payload["data"]
        if data.get("admin_id"):
            self.waiter.deliver(("admin", data["admin_id"]), data)
        if data["role"] == "owner":
            self.join_infos.forget_ledger(data["ledger_id"])
            self.waiter.deliver(("owner_changed", data["ledger_id"]), data)

    @_broadcast("org.qr_rotated")
    def on_qr_rotated(self, payload):
        self.join_infos.forget_ledger(payload["data"]["ledger_id"])

    @_broadcast("member.joined")
    def on_member_joined(self, payload):
        self.waiter.deliver(("member_joined", payload["data"]["membership_id"]), payload["data"])

    # -- helpers --------------------------------------------------------------------

    def _person(self, request) -> str:
        token = bearer_token(request)
        person_ref = self.sessions.get(token)
        if person_ref is None:
            person_ref = self.verify.check_session(token)["person_ref"]
            self.sessions.put(token, person_ref)
        return person_ref

    def _challenge_outcome(self, challenge_id: str, field_prefix: str = "admin_") -> dict:
        """Wait for verify's answer; raise IdentityRejected naming the field at fault."""
        outcome = self.waiter.wait(("challenge", challenge_id), WAIT_SECONDS)
        if outcome is None:
            return {"status": "pending"}
        if "rejected" in outcome:
            data = outcome["rejected"]
            if data["reason"] in JOIN_ANSWERS:  # told once the Health Kit agreed
                raise Conflict(data["message"], details={"reason": data["reason"]})
            field = REJECTED_FIELD.get(data["reason"])
            raise IdentityRejected(
                data["message"],
                field=field_prefix + field if field else None,
                details={"reason": data["reason"], "challenge_id": challenge_id},
            )
        sent = outcome["sent"]
        return {"status": "code_sent", "masked_phone": sent["masked_phone"], "expires_at": sent["expires_at"]}

    # -- 机构建: create a ledger ------------------------------------------------------

    @http("POST", "/api/ledgers")
    @endpoint
    def create_ledger(self, request):
        body = body_of(request)
        application = {k: body.get(k) for k in APPLICATION_FIELDS}
        created = self.org.create_ledger(crypto().seal("org", application), client_of(request))
        outcome = self._challenge_outcome(created["challenge_id"])
        status = 201 if outcome["status"] == "code_sent" else 202
        return {**created, **outcome}, status

    @http("GET", "/api/ledgers/<ledger_id>")
    @endpoint
    def get_ledger(self, request, ledger_id):
        return self.org.get_ledger(ledger_id, self._person(request))

    @http("GET", "/api/ledgers/<ledger_id>/qr.<kind>")
    @endpoint
    def ledger_qr(self, request, ledger_id, kind):
        if kind not in ("png", "svg"):
            raise NotFound("No such QR format.")
        link = self.org.join_link(ledger_id, self._person(request), request.args.get("expires_in_days"))
        qr = segno.make(join_url(link["token"]), error="m")
        buf = io.BytesIO()
        if kind == "png":
            qr.save(buf, kind="png", scale=10, border=4)
            mimetype = "image/png"
        else:
            qr.save(buf, kind="svg", scale=10, border=4, xmldecl=False)
            mimetype = "image/svg+xml"
        return Response(buf.getvalue(), mimetype=mimetype, headers={"Cache-Control": "no-store"})

    @http("GET", "/api/ledgers/<ledger_id>/join-link")
    @endpoint
    def ledger_join_link(self, request, ledger_id):
        link = self.org.join_link(ledger_id, self._person(request), request.args.get("expires_in_days"))
        return {**link, "url": join_url(link["token"])}

    @http("POST", "/api/ledgers/<ledger_id>/qr/rotate")
    @endpoint
    def rotate_qr(self, request, ledger_id):
        link = self.org.rotate_qr(ledger_id, self._person(request))
        self.join_infos.forget_ledger(ledger_id)
        return {**link, "url": join_url(link["token"])}

    @http("POST", "/api/ledgers/<ledger_id>/close")
    @endpoint
    def close_ledger(self, request, ledger_id):
        """Returns a challenge; confirming its SMS code closes the ledger."""
        return self.org.request_close(ledger_id, self._person(request), client_of(request)), 201

    # -- 个人填: join a ledger ---------------------------------------------------------

    @http("GET", "/api/join/<token>")
    @endpoint
    def join_info(self, request, token):
        info = self.join_infos.get(token)
        if info is None:
            info = self.org.join_info(token)
            self.join_infos.put(token, info)
        return {**info, "consent": {"version": CONSENT_VERSION, "text": CONSENT_TEXT}}

    @http("POST", "/api/join/<token>")
    @endpoint
    def join(self, request, token):
        body = body_of(request)
        fields = {k: body.get(k) for k in JOIN_FIELDS}
        requested = self.member.request_join(token, crypto().seal("member", fields), client_of(request))
        outcome = self._challenge_outcome(requested["challenge_id"], field_prefix="")
        status = 201 if outcome["status"] == "code_sent" else 202
        return {**requested, **outcome}, status

    # -- members, for admins ------------------------------------------------------------

    @http("GET", "/api/ledgers/<ledger_id>/members")
    @endpoint
    def list_members(self, request, ledger_id):
        return self._members(ledger_id, self._person(request), request.args.to_dict(), "members")

    def _members(self, ledger_id: str, person: str, args: dict, view: str, everything: bool = False) -> dict:
        """The ledger view composed with a fixed number of calls. Without health filters
        the member service (the record of who is a member) pages and healthsync adds the
        health fields; with them healthsync filters and sorts (and holds the page), and
        member adds the masked details — or filters and sorts by name, which only it can
        read. Beyond active members (people who left have no health data, and
        parse_filters refuses health filters for them) member filters, sorts and pages."""
        f = parse_filters(args)
        recorded = described(f)
        if f["status"] != "active" or not (needs_health(f) or everything or f.get("q") or f["sort"] == "name"):
            page = self.member.list_members(
                ledger_id, person, f["page"], f["page_size"], f["status"], f["order"], f.get("q"),
                f["sort"] == "name", recorded.get("joined_from"), recorded.get("joined_to"), recorded,
            )
            live = [item["member_id"] for item in page["items"] if item["status"] == "active"]
            health = self.healthsync.health_of_memberships(ledger_id, person, live) if live else {}
            for item in page["items"]:
                item.update(health.get(item["member_id"], {}))
            return page
        found = self.healthsync.query_members(ledger_id, person, args, everything)
        if found["paged"]:
            ids = [i["member_id"] for i in found["items"]]
            details = self.member.member_details(ledger_id, person, ids, view, recorded)
            items = [{**details[i["member_id"]], **i} for i in found["items"] if i["member_id"] in details]
            return {"items": items, "total": found["total"], "page": f["page"], "page_size": f["page_size"]}
        health = {i["member_id"]: i for i in found["items"]}
        page_no, page_size = (1, max(1, len(health))) if everything else (f["page"], f["page_size"])
        searched = self.member.search_members(
            ledger_id, person, list(health), f.get("q"), f["sort"] == "name", f["order"],
            page_no, page_size, view, recorded,
        )
        items = [{**d, **health[d["member_id"]]} for d in searched["items"]]
        return {"items": items, "total": searched["total"], "page": page_no, "page_size": page_size}

    @http("GET", "/api/ledgers/<ledger_id>/export.<kind>")
    @endpoint
    def export(self, request, ledger_id, kind):
        if kind not in ("xlsx", "csv"):
            raise NotFound("No such export format.")
        person = self._person(request)
        args = request.args.to_dict()
        args.pop("page", None)
        args.pop("page_size", None)
        org_name = self.org.get_ledger(ledger_id, person)["org_name"]
        args["status"] = "active"  # an export is of the active members, whatever status the page shows
        rows = self._members(ledger_id, person, args, f"export.{kind}", everything=True)
        recorded = described(parse_filters(args))
        # rendering thousands of rows is CPU work: in a real thread, so the hub keeps
        # serving other requests (and AMQP heartbeats) meanwhile
        if kind == "xlsx":
            body = tpool.execute(exports.to_xlsx, org_name, rows["items"], recorded)
            mimetype = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
        else:
            body = tpool.execute(exports.to_csv, org_name, rows["items"], recorded)
            mimetype = "text/csv; charset=utf-8"
        at = datetime.now(timezone.utc)
        # the org's name in Beijing time (RFC 6266 filename*), and an ASCII one for old clients
        fallback = f"ledger-{ledger_id[:8]}-{at.astimezone(HEALTH_KIT_TZ):%Y%m%d-%H%M}.{kind}"
        return Response(body, headers={
            "Content-Type": mimetype, "Cache-Control": "no-store",
            "Content-Disposition": f"attachment; filename=\"{fallback}\"; "
                                   f"filename*=UTF-8''{quote(exports.filename(org_name, kind, at))}",
        })

    @http("GET", "/api/ledgers/<ledger_id>/stats")
    @endpoint
    def stats(self, request, ledger_id):
        return self.healthsync.ledger_stats(ledger_id, self._person(request))

    # -- rules, admins, accountability, alerts, reminders -------------------------------

    @http("GET", "/api/ledgers/<ledger_id>/rules")
    @endpoint
    def get_rules(self, request, ledger_id):
        return self.org.get_rules(ledger_id, self._person(request))

    @http("PUT", "/api/ledgers/<ledger_id>/rules")
    @endpoint
    def set_rules(self, request, ledger_id):
        return self.org.set_rules(ledger_id, self._person(request), body_of(request))

    @http("GET", "/api/ledgers/<ledger_id>/admins")
    @endpoint
    def list_admins(self, request, ledger_id):
        return self.org.list_admins(ledger_id, self._person(request))

    @http("POST", "/api/ledgers/<ledger_id>/admins")
    @endpoint
    def invite_admin(self, request, ledger_id):
        body = body_of(request)
        fields = {k: body.get(k) for k in ("name", "id_type", "id_number", "phone")}
        invited = self.org.invite_admin(
            ledger_id, self._person(request), crypto().seal("org", fields), client_of(request)
        )
        outcome = self._challenge_outcome(invited["challenge_id"], field_prefix="")
        return {**invited, **outcome}, 201 if outcome["status"] == "code_sent" else 202

    @http("DELETE", "/api/ledgers/<ledger_id>/admins/<admin_id>")
    @endpoint
    def remove_admin(self, request, ledger_id, admin_id):
        return self.org.remove_admin(ledger_id, self._person(request), admin_id)

    @http("POST", "/api/ledgers/<ledger_id>/owner")
    @endpoint
    def transfer_ownership(self, request, ledger_id):
        body = body_of(request)
        return self.org.request_transfer(ledger_id, self._person(request), body.get("admin_id"), client_of(request)), 201

    @http("GET", "/api/ledgers/<ledger_id>/access-log")
    @endpoint
    def access_log(self, request, ledger_id):
        """A page of the access log (``page``, ``page_size``), newest first, with ``total``."""
        return self.member.access_log(
            ledger_id, self._person(request), request.args.get("page"), request.args.get("page_size")
        )

    @http("GET", "/api/ledgers/<ledger_id>/alerts")
    @endpoint
    def alerts(self, request, ledger_id):
        person = self._person(request)
        found = self.healthsync.list_alerts(ledger_id, person)
        ids = list({a["member_id"] for a in found["items"]})
        names = self.member.member_details(ledger_id, person, ids, "alerts", {}) if ids else {}
        for alert in found["items"]:
            alert["name"] = names.get(alert["member_id"], {}).get("name", "")
        return found

    @http("POST", "/api/ledgers/<ledger_id>/alerts/read")
    @endpoint
    def mark_alerts_read(self, request, ledger_id):
        body = body_of(request)
        return self.healthsync.mark_alerts_read(ledger_id, self._person(request), body.get("alert_ids"))

    @http("PUT", "/api/ledgers/<ledger_id>/alerts/digest")
    @endpoint
    def set_digest(self, request, ledger_id):
        return self.healthsync.set_digest(ledger_id, self._person(request), body_of(request).get("enabled"))

    @http("POST", "/api/ledgers/<ledger_id>/reminders")
    @endpoint
    def send_reminders(self, request, ledger_id):
        person = self._person(request)
        body = body_of(request)
        wanted = body.get("member_ids")
        if wanted is not None and not (isinstance(wanted, list) and all(isinstance(i, str) for i in wanted)):
            raise InvalidInput.from_fields({"member_ids": "must be a list of member ids"})
        abnormal = self.healthsync.abnormal_members(ledger_id, person, wanted)
        rule_text = "、".join(rule_labels(abnormal["rules"]))
        result = self.member.send_reminders(ledger_id, person, abnormal["members"], rule_text)
        result["not_abnormal"] = len(set(wanted) - set(abnormal["members"])) if wanted is not None else 0
        return result

    @http("POST", "/api/ledgers/<ledger_id>/members/<member_id>/refresh")
    @endpoint
    def refresh_member(self, request, ledger_id, member_id):
        return self.healthsync.refresh_member(ledger_id, member_id, self._person(request))

    # -- comparison runs ----------------------------------------------------------------

    @http("POST", "/api/ledgers/<ledger_id>/sync")
    @endpoint
    def sync_ledger(self, request, ledger_id):
        return self.healthsync.request_ledger_sync(ledger_id, self._person(request)), 202

    @http("GET", "/api/ledgers/<ledger_id>/sync")
    @endpoint
    def ledger_sync_status(self, request, ledger_id):
        return self.healthsync.ledger_sync_status(ledger_id, self._person(request))

    @http("GET", "/api/sync/runs/<run_id>")
    @endpoint
    def run_status(self, request, run_id):
        return self.healthsync.run_status(run_id, self._person(request))

    @http("DELETE", "/api/ledgers/<ledger_id>/members/<member_id>")
    @endpoint
    def remove_member(self, request, ledger_id, member_id):
        body = body_of(request)
        reason = body.get("reason") or request.args.get("reason")
        return self.member.remove_member(ledger_id, member_id, self._person(request), reason)

    # -- self-service for members ---------------------------------------------------------

    @http("GET", "/api/me/memberships")
    @endpoint
    def my_memberships(self, request):
        return {"items": self.member.my_memberships(self._person(request))}

    @http("POST", "/api/me/memberships/<membership_id>/recheck")
    @endpoint
    def recheck(self, request, membership_id):
        """"My status looks wrong": check this member with the Health Kit now."""
        return self.healthsync.recheck_mine(membership_id, self._person(request))

    @http("GET", "/api/me/memberships/<membership_id>/views")
    @endpoint
    def my_ledger_views(self, request, membership_id):
        """Who viewed my ledger's member data, and when: a page (``page``, ``page_size``)."""
        return self.member.views_of_my_ledger(
            membership_id, self._person(request), request.args.get("page"), request.args.get("page_size")
        )

    @http("POST", "/api/me/memberships/<membership_id>/leave")
    @endpoint
    def leave(self, request, membership_id):
        return self.member.leave(membership_id, self._person(request))

    # -- challenges -------------------------------------------------------------------

    @http("GET", "/api/challenges/<challenge_id>")
    @endpoint
    def get_challenge(self, request, challenge_id):
        return self.verify.get_challenge(challenge_id)

    @http("POST", "/api/challenges/<challenge_id>/confirm")
    @endpoint
    def confirm_challenge(self, request, challenge_id):
        body = body_of(request)
        result = self.verify.confirm_code(challenge_id, body.get("code"))
        response = {
            "challenge_id": result["challenge_id"],
            "purpose": result["purpose"],
            "token": result["token"],
            "token_type": "Bearer",
        }
        if result["purpose"] == "ledger_registration":
            ledger_id = result["subject_id"]
            activated = self.waiter.wait(("ledger_activated", ledger_id), WAIT_SECONDS)
            response["ledger_id"] = ledger_id
            response["ledger_status"] = "active" if activated else "activating"
            if activated:
                response["ledger"] = self.org.get_ledger(ledger_id, result["person_ref"])
        elif result["purpose"] == "join":
            joined = self.waiter.wait(("member_joined", result["subject_id"]), WAIT_SECONDS)
            response["membership_id"] = result["subject_id"]
            response["membership_status"] = "active" if joined else self._join_state(result)
        elif result["purpose"] == "admin_invite":
            response["admin_id"] = result["subject_id"]
            response["admin_status"] = "active" if self.waiter.wait(("admin", result["subject_id"]), WAIT_SECONDS) else "activating"
        elif result["purpose"] == "reconfirm":
            # the act that was waiting for it: closing the ledger, or handing ownership over
            ledger_id = result["subject_id"]
            done = self.waiter.wait_any([("ledger_closed", ledger_id), ("owner_changed", ledger_id)], WAIT_SECONDS)
            response["ledger_id"] = ledger_id
            if done and done[0][0] == "ledger_closed":
                response["ledger_status"] = "closed"
            elif done:
                response["owner_changed"] = True
            else:
                response["ledger_status"] = "pending"
        return response

    def _join_state(self, verified: dict) -> str:
        """No ``member.joined`` within the wait: still activating (a busy moment), or the
        join ended without them (replaced by a newer request, the ledger closed)? Never
        "joined" for someone who is not a member."""
        state = self.member.join_state(verified["subject_id"], verified["person_ref"])
        if state == "active":
            return "active"
        if state == "pending":
            return "activating"
        raise Conflict(
            "This join did not complete (it was replaced by a newer request, or the ledger closed); please join again.",
            details={"reason": "join_ended"},
        )

    @http("POST", "/api/challenges/<challenge_id>/resend")
    @endpoint
    def resend_challenge(self, request, challenge_id):
        return self.verify.resend_code(challenge_id)

    # -- sessions ---------------------------------------------------------------------

    @http("POST", "/api/login")
    @endpoint
    def login(self, request):
        body = body_of(request)
        phone = validate_fields({"phone": body.get("phone")}, {"phone": validate_phone})["phone"]
        return self.verify.start_login(crypto().seal("verify", {"phone": phone}), client_of(request)), 201

    @http("POST", "/api/logout")
    @endpoint
    def logout(self, request):
        token = bearer_token(request)
        self.sessions.forget(token)
        self.verify.revoke_session(token)
        return {"ok": True}

    @http("GET", "/api/me/ledgers")
    @endpoint
    def my_ledgers(self, request):
        return {"items": self.org.my_ledgers(self._person(request))}

    # -- dev only ---------------------------------------------------------------------

    @http("GET", "/api/dev/sms")
    @endpoint
    def dev_sms(self, request):
        if not settings().dev_sms_enabled:
            raise NotFound("Not found.")
        phone = request.args.get("phone")
        if phone:
            phone = validate_fields({"phone": phone}, {"phone": validate_phone})["phone"]
            return {"items": sms_sender().messages_for(phone)}
        return {"items": sms_sender().latest()}

    @http("GET", "/api/ping")
    @endpoint
    def ping(self, request):
        """One RPC to a method that does nothing: the benchmarks' reference."""
        return self.org.ping()

    # -- the H5 pages ---------------------------------------------------------------------

    @http("GET", "/")
    def index_page(self, request):
        return page("")

    @http("GET", "/<path:path>")
    def pages(self, request, path):
        if path.startswith("api/"):
            return json_response({"error": {"code": "not_found", "message": "No such API endpoint."}}, 404)
        return page(path)

    @http("GET", "/api/health")
    @endpoint
    def health(self, request):
        """Ready when every service answers and reaches its database; 503 naming the
        ones that do not, and why (``problems``)."""
        services, problems = {}, {}
        for name in ("org", "verify", "member", "healthsync"):
            try:
                answer = getattr(self, name).within(2.0).health()
            except Exception as exc:  # noqa: BLE001 - any failure means "not ready"
                answer = {"ok": False, "problem": f"did not answer within 2 s ({type(exc).__name__})"}
            services[name] = bool(answer["ok"])
            if not answer["ok"]:
                problems[name] = answer.get("problem", "not ready")
        ok = all(services.values())
        return {"ok": ok, "services": services, **({"problems": problems} if problems else {})}, 200 if ok else 503


def join_url(token: str) -> str:
    return f"{settings().public_base_url}/join/{token}"

