"""The join flow's bare skeleton, for the ``floor`` benchmark: the same hops as a real
join and nothing else.

A real join is 4 HTTP requests to the gateway (2 of them an RPC, 2 of them waiting for
a broadcast event), 4 events (``join_requested`` → verify, ``challenge_sent`` → the
gateways, ``identity_verified`` → member, ``joined`` → healthsync and the gateways) and
2 Health Kit calls. Here every hop is made the way the services make it (Nameko RPC
with the project's ``Rpc``, Nameko events to durable queues, broadcast to the gateway's
waiter, urllib3 to a kept-alive HTTP server), but no hop does any work: no database, no
outbox, no crypto, no validation. Events go out without publisher confirms, one broker
round trip less than the real outbox relays' confirmed publishing. What a join costs
here is what the design's message flow costs on this stack before any domain work:
the floor under the real join.

No personal data: the "person" is a random key the benchmark makes up.
"""

from __future__ import annotations

import json
import os
import uuid

import urllib3
from nameko.events import BROADCAST, EventDispatcher, event_handler
from nameko.web.handlers import http
from werkzeug.wrappers import Response

from services.gateway.waiter import WaiterProvider
from shared.rpc import Rpc, rpc

WAIT_SECONDS = 5.0
_SIM = None


def _health_kit_call(path: str, body: dict) -> dict:
    """One call to the floor's Health Kit stand-in, as HttpHealthKit makes it."""
    global _SIM
    if _SIM is None:
        _SIM = urllib3.PoolManager(maxsize=20)
    answer = _SIM.request(
        "POST", os.environ["FLOOR_SIM_URL"] + path, body=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
    )
    return json.loads(answer.data)


def _json(body: dict, status: int = 200) -> Response:
    return Response(json.dumps(body), status=status, mimetype="application/json")


class Pingable:
    """An RPC that does nothing: the reference request, and the gateway's readiness check."""

    @rpc
    def ping(self):
        return {"pong": True}


class FloorMember(Pingable):
    name = "floor_member"
    dispatch = EventDispatcher(use_confirms=False)  # see the module's docstring

    @rpc
    def request_join(self, person: str):
        ids = {"membership_id": str(uuid.uuid4()), "challenge_id": str(uuid.uuid4()), "person": person}
        self.dispatch("join_requested", ids)
        return ids

    @event_handler("floor_verify", "identity_verified")
    def on_identity_verified(self, payload):
        self.dispatch("joined", payload)


class FloorVerify(Pingable):
    name = "floor_verify"
    dispatch = EventDispatcher(use_confirms=False)  # see the module's docstring

    @event_handler("floor_member", "join_requested")
    def on_join_requested(self, payload):
        _health_kit_call("/match", {"person": payload["person"]})
        self.dispatch("challenge_sent", {**payload, "code": "123456"})

    @rpc
    def confirm(self, challenge_id: str, membership_id: str, code: str):
        data = {"challenge_id": challenge_id, "membership_id": membership_id}
        self.dispatch("identity_verified", data)
        return {**data, "token": uuid.uuid4().hex}


class FloorHealthsync(Pingable):
    name = "floor_healthsync"

    @event_handler("floor_member", "joined")
    def on_joined(self, payload):
        _health_kit_call("/bulk", {"people": [payload["membership_id"]]})


class FloorGateway:
    name = "floor_gateway"
    member = Rpc("floor_member")
    verify = Rpc("floor_verify")
    healthsync = Rpc("floor_healthsync")
    waiter = WaiterProvider()

    @event_handler("floor_verify", "challenge_sent", handler_type=BROADCAST, reliable_delivery=False)
    def on_challenge_sent(self, payload):
        self.waiter.deliver(("challenge", payload["challenge_id"]), payload)

    @event_handler("floor_member", "joined", handler_type=BROADCAST, reliable_delivery=False)
    def on_joined(self, payload):
        self.waiter.deliver(("joined", payload["membership_id"]), payload)

    @http("GET", "/api/health")
    def health(self, request):
        """Ready when every service answers: each has declared its event queues by then
        (an event published before its queue exists would be lost, and a join wait out)."""
        for service in (self.member, self.verify, self.healthsync):
            service.within(2).ping()
        return _json({"ok": True})

    @http("GET", "/api/ping")
    def ping(self, request):
        return _json(self.member.ping())

    @http("GET", "/api/join/<token>")
    def join_info(self, request, token):
        return _json({"org_name": "floor", "token": token})

    @http("POST", "/api/join/<token>")
    def join(self, request, token):
        requested = self.member.request_join(json.loads(request.get_data())["person"])
        sent = self.waiter.wait(("challenge", requested["challenge_id"]), WAIT_SECONDS)
        return _json({**requested, "status": "code_sent" if sent else "pending"}, 201 if sent else 202)

    @http("GET", "/api/dev/sms")
    def sms(self, request):
        sent = self.waiter.wait(("challenge", request.args["challenge_id"]), 0)
        return _json({"items": [{"text": f"code {sent['code']}"}] if sent else []})

    @http("POST", "/api/challenges/<challenge_id>/confirm")
    def confirm(self, request, challenge_id):
        body = json.loads(request.get_data())
        result = self.verify.confirm(challenge_id, body["membership_id"], body["code"])
        joined = self.waiter.wait(("joined", result["membership_id"]), WAIT_SECONDS)
        return _json({**result, "membership_status": "active" if joined else "activating"})
