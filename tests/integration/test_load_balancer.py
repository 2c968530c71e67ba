"""nginx (deploy/nginx) in front of two web processes: both transports, stickiness, failover."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from http.cookiejar import DefaultCookiePolicy
from typing import Any

import psutil
import pytest
import redis
import requests
import socketio

from core.presence import PRESENCE_PREFIX
from deploy.nginx.render import STICKY_COOKIE
from tests.support.clients import Account, Api, LiveClient
from tests.support.flows import create_campaign, create_channel
from tests.support.net import port_open
from tests.support.nginx import Balancer, nginx_unavailable, running_nginx
from tests.support.stack import Stack

# nginx, two web processes and Redis are under test; the database only stores.
pytestmark = pytest.mark.one_backend

TRANSPORTS = ("websocket", "polling")
PROCESSES = (0, 1)


class BalancedClient(LiveClient):
    """A LiveClient that keeps its cookies as a browser does and reconnects by itself.

    Each reconnection sends the highest seq received so far as `last_seq`, as the inbox page does.
    """

    def __init__(
        self,
        base_url: str,
        token: str,
        transports: Sequence[str],
        process: int | None,
        keep_cookies: bool = True,
    ) -> None:
        super().__init__(base_url, token, transports=transports)
        self.connects = 0
        # The last_seq each (re)connection sent.
        self.resumed_from: list[int] = []
        self.cookies = requests.Session()
        if not keep_cookies:
            # As a page on another origin without withCredentials, or Node's client.
            self.cookies.cookies.set_policy(DefaultCookiePolicy(allowed_domains=[]))
        if process is not None:
            # As a browser that web process `process` answered before: nginx routes by this.
            self.cookies.cookies.set(
                STICKY_COOKIE, str(process), domain="127.0.0.1", path="/socket.io/"
            )
        self.sio = socketio.Client(
            reconnection=True,
            reconnection_delay=0.2,
            reconnection_delay_max=1,
            randomization_factor=0,
            http_session=self.cookies,
        )
        self.sio.on("*", self._record)
        self.sio.on("connect_error", self._record_connect_error)
        self.sio.on("connect", self._count_connect)

    def _count_connect(self) -> None:
        """Count the connections, the first and each reconnection."""
        with self._cond:
            self.connects += 1

    def _auth(self) -> dict[str, Any]:
        """The handshake's auth, read again at each reconnection."""
        last_seq = max(self.seqs(), default=0)
        self.resumed_from.append(last_seq)
        return {"token": self.token, "last_seq": last_seq}

    def connect(self, wait_timeout: float = 10.0) -> BalancedClient:
        """Connect through the balancer; reconnections follow on their own."""
        self.sio.connect(
            self.base_url,
            auth=self._auth,
            transports=self.transports,
            socketio_path="socket.io",
            wait_timeout=wait_timeout,
        )
        return self

    def disconnect(self) -> None:
        """Close the connection, or stop reconnecting."""
        self.sio.shutdown()

    @property
    def sticky(self) -> str | None:
        """The process the balancer last named in its cookie (polling clients see its answers)."""
        return self.cookies.cookies.get(STICKY_COOKIE, path="/socket.io/")

    def seqs(self) -> list[int]:
        """The seq of every notification received, in arrival order."""
        return [n["seq"] for n in self.notifications]


@pytest.fixture(scope="module")
def balanced(module_stack: Stack) -> Iterator[tuple[Stack, Balancer]]:
    """Two web processes and a worker, with nginx in front of them."""
    if reason := nginx_unavailable():
        pytest.skip(reason)
    stack = module_stack.start(web=2, workers=1)
    servers = [f"127.0.0.1:{port}" for port in stack.web_ports[:2]]
    with running_nginx(servers, stack.workdir / "nginx", stack.log_dir) as balancer:
        yield stack, balancer


@pytest.fixture
def clients() -> Iterator[list[BalancedClient]]:
    """The test's clients, stopped at teardown even while reconnecting."""
    made: list[BalancedClient] = []
    try:
        yield made
    finally:
        for client in made:
            client.disconnect()


def _connect(
    clients: list[BalancedClient],
    url: str,
    who: Account,
    transports: Sequence[str],
    process: int | None,
    keep_cookies: bool = True,
) -> BalancedClient:
    """Connect one more client of `who` through the balancer."""
    client = BalancedClient(url, who.access_token, transports, process, keep_cookies)
    clients.append(client)
    return client.connect()


def _connect_everywhere(
    clients: list[BalancedClient], url: str, who: Account
) -> dict[tuple[str, int], BalancedClient]:
    """A client of `who` on each transport on each web process, by (transport, process)."""
    return {
        (transport, process): _connect(clients, url, who, (transport,), process)
        for transport in TRANSPORTS
        for process in PROCESSES
    }


def _process_of(stack: Stack, client: BalancedClient) -> int:
    """Which web process holds the client's socket, as that process recorded it in Redis."""
    sid = client.sio.get_sid()
    store = redis.Redis.from_url(stack.redis_url)
    try:
        # One hash per web process, named presence:<pid>-<nonce> (web/presence.py).
        keys = [k.decode() for k in store.scan_iter(match=f"{PRESENCE_PREFIX}*")]
        pids = [
            int(k.removeprefix(PRESENCE_PREFIX).split("-")[0])
            for k in keys
            if store.hexists(k, sid)
        ]
    finally:
        store.close()
    assert len(pids) == 1, f"socket {sid} is in {len(pids)} web processes' presence"
    # gunicorn's worker holds the sockets; stack.webs knows its master.
    master = psutil.Process(pids[0]).ppid()
    index = next((i for i, web in enumerate(stack.webs) if web.pid == master), None)
    assert index is not None, f"socket {sid} is on no running web process of the stack"
    return index


def _wait_until(done: Callable[[], bool], timeout: float) -> None:
    """Wait until `done()` is true or the timeout passes (the caller's asserts then say why)."""
    deadline = time.monotonic() + timeout
    while not done() and time.monotonic() < deadline:
        time.sleep(0.05)


def _wait_until_closed(port: int, timeout: float = 10.0) -> None:
    """Wait until nothing accepts connections on the port any more."""
    deadline = time.monotonic() + timeout
    while port_open("127.0.0.1", port, timeout=0.2):
        assert time.monotonic() < deadline, f"port {port} still open {timeout}s after the kill"
        time.sleep(0.02)


def test_each_transport_on_each_process(
    balanced: tuple[Stack, Balancer], clients: list[BalancedClient]
) -> None:
    """Through nginx, websocket and long-polling clients on either process get notifications."""
    stack, balancer = balanced
    api = Api(balancer.url)
    owner, advertiser = api.register(role="channel_owner"), api.register(role="advertiser")
    placed = _connect_everywhere(clients, balancer.url, owner)
    # A first visit carries no cookie: it goes by address, and the cookie then names the process,
    # so the upgrade to a websocket (a browser's default) reaches the one holding the session.
    newcomer = _connect(clients, balancer.url, owner, ("polling", "websocket"), None)
    # A client that keeps no cookies long-polls on the process its address picks.
    cookieless = _connect(clients, balancer.url, owner, ("polling",), None, keep_cookies=False)

    for (transport, process), client in placed.items():
        assert client.sio.transport() == transport
        assert _process_of(stack, client) == process, (transport, process)
    assert newcomer.sio.transport() == "websocket", "the upgrade went to another process"
    assert newcomer.sticky == str(_process_of(stack, newcomer))
    assert cookieless.sticky is None and cookieless.sio.transport() == "polling"
    assert _process_of(stack, cookieless) == _process_of(stack, newcomer), "same address"
    assert placed["polling", 0].sticky == "0" and placed["polling", 1].sticky == "1"

    campaign = create_campaign(api, advertiser, create_channel(api, owner)["id"])
    for client in [*placed.values(), newcomer, cookieless]:
        event = client.wait_for(lambda n: n["type"] == "new_campaign", timeout=10)
        assert event["campaign_id"] == campaign["id"]
    # Every long-poll reached the process holding its session: none was refused and reconnected.
    assert all(client.connects == 1 for client in clients), balancer.process.log_tail()


def test_dead_process_hands_its_clients_over(
    balanced: tuple[Stack, Balancer], clients: list[BalancedClient]
) -> None:
    """Web process 0 dies: its clients reconnect through nginx to 1 and miss nothing (catch-up)."""
    stack, balancer = balanced
    api = Api(balancer.url)
    owner, advertiser = api.register(role="channel_owner"), api.register(role="advertiser")
    channel = create_channel(api, owner)
    placed = _connect_everywhere(clients, balancer.url, owner)
    assert {key: _process_of(stack, c) for key, c in placed.items()} == {
        key: key[1] for key in placed
    }
    before = create_campaign(api, advertiser, channel["id"], title="before")
    for client in placed.values():
        client.wait_for(lambda n: n.get("campaign_id") == before["id"])

    stack.kill_web(0)
    # Dead, not dying: a POST sent to a process that dies before answering gets a 502, as it must
    # (nginx cannot know whether it was done), so the calls below wait until the port refuses.
    _wait_until_closed(stack.web_ports[0])
    # While web 0's clients move, more notifications; the REST calls go through nginx too.
    for i in range(3):
        create_campaign(api, advertiser, channel["id"], title=f"after {i}")
    stored = api.as_user(owner).get("/api/notifications", params={"after_seq": 0})
    assert stored.status_code == 200, stored.text
    # Every stored one: the clients' first handshake said last_seq 0.
    wanted = {n["seq"] for n in stored.json()}
    assert len(wanted) >= 4, stored.json()

    for (transport, process), client in placed.items():
        reconnections = 1 if process == 0 else 0
        # The catch-up is sent before the server's acceptance, so it can be in first.
        _wait_until(
            lambda c=client, n=reconnections: (
                wanted <= set(c.seqs()) and c.sio.connected and c.connects >= 1 + n
            ),
            timeout=20,
        )
        seqs = client.seqs()
        context = (
            f"{transport} client of web {process}: seqs {seqs}, {client.connects} connections "
            f"resuming from {client.resumed_from}, connected={client.sio.connected}\n"
            f"{balancer.process.log_tail(80)}"
        )
        assert set(seqs) == wanted, context
        repeats = {seq for seq in seqs if seqs.count(seq) > 1}
        if process == 0:
            # A seq committed while the socket reconnected can come twice: in its catch-up, and
            # live when the worker's emit lands after the handshake (web/realtime.py holds live
            # emits only during it). The client drops repeats by seq, as the inbox page does;
            # nothing up to the last_seq it sent comes back.
            resumed = client.resumed_from[-1]
            assert all(seq > resumed and seqs.count(seq) == 2 for seq in repeats), context
        else:
            assert not repeats, f"a notification arrived twice; {context}"
        assert client.sio.connected, context
        assert _process_of(stack, client) == 1, context
        # Only the dead process's clients had to reconnect, once.
        assert client.connects == 1 + reconnections, context
    assert placed["polling", 0].sticky == "1", "nginx re-stamped the moved client's cookie"
