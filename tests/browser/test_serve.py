"""`python -m vae serve`: nginx in front of Streamlit replicas, with sticky sessions, one runs folder, one cookie
secret and one training queue.

The proxy's routing is tested first against two tiny HTTP servers (no Streamlit, no browser); then two
real replicas behind the proxy serve several browser sessions: each session stays on its replica and
keeps its own model from page to page, a run started behind one replica shows (training, queued) behind
the other, a second run beyond VAE_MAX_JOBS=1 waits in the one queue, and when the command ends nothing
it started is left running.
"""
from __future__ import annotations

import http.server
import itertools
import os
import re
import shutil
import signal
import stat
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest

from tests.browser.support import (
    DRAWN,
    PROGRESS,
    SETTLED,
    VIEWPORT,
    App,
    assert_no_errors,
    free_port,
    open_page,
    wait_for_images,
    wait_for_plots,
)
from vae.serve import (
    COOKIE,
    SECRET_FILE,
    ServeError,
    cookie_secret,
    find_nginx,
    nginx_conf,
    parse_upstream,
    settings_from,
)

SIDEBAR = '[data-testid="stSidebar"]'


@pytest.fixture(scope="module")
def nginx(require) -> str:
    """The nginx binary `vae serve` runs (Debian: apt-get install nginx)."""
    try:
        return find_nginx()
    except ServeError as err:
        require(False, str(err))


# -- the pieces alone --------------------------------------------------------------------------------
def test_the_settings_come_from_the_options_then_the_environment(tmp_path):
    env = {"VAE_RUNS_DIR": str(tmp_path / "r"), "VAE_MAX_JOBS": "3", "VAE_READ_ONLY": "yes"}
    s = settings_from(env, torch_threads=2)
    assert s.env() == {"VAE_RUNS_DIR": str(tmp_path / "r"), "VAE_READ_ONLY": "1", "VAE_MAX_JOBS": "3",
                       "VAE_TORCH_THREADS": "2"}
    assert settings_from(env, runs_dir=str(tmp_path / "o"), max_jobs=1).env()["VAE_MAX_JOBS"] == "1"
    assert settings_from(env, runs_dir=str(tmp_path / "o")).runs_dir == tmp_path / "o"
    with pytest.raises(ServeError, match="whole numbers"):
        settings_from({"VAE_MAX_JOBS": "two"})
    assert parse_upstream("10.0.0.11:8501") == "10.0.0.11:8501"
    for bad in ("10.0.0.11", "host:port", "a;b:80", ":80"):
        with pytest.raises(ServeError, match="HOST:PORT"):
            parse_upstream(bad)


def test_one_cookie_secret_is_made_once_private_and_kept_or_taken_from_the_environment(tmp_path):
    secret = cookie_secret(tmp_path, {})
    path = tmp_path / SECRET_FILE
    assert len(secret) >= 32 and stat.S_IMODE(path.stat().st_mode) == 0o600
    assert cookie_secret(tmp_path, {}) == secret  # a second start (or a second machine) uses the same one
    os.chmod(path, 0o644)
    assert cookie_secret(tmp_path, {}) == secret and stat.S_IMODE(path.stat().st_mode) == 0o600
    assert cookie_secret(tmp_path, {"STREAMLIT_SERVER_COOKIE_SECRET": "given"}) == "given"
    assert not [p for p in tmp_path.iterdir() if p.name != SECRET_FILE]  # no temp file left


class _Backend(http.server.BaseHTTPRequestHandler):
    """Answers with its server's name and the connection headers the proxy sent it."""

    def do_GET(self):
        body = f"{self.server.name} upgrade={self.headers.get('Upgrade')} connection={self.headers.get('Connection')}"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body.encode())

    def log_message(self, *_):
        pass


def test_the_proxy_gives_a_new_visitor_a_replica_and_keeps_it_by_cookie(tmp_path, nginx):
    backends = []
    for name in ("r1", "r2"):
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Backend)
        server.name = name
        threading.Thread(target=server.serve_forever, daemon=True).start()
        backends.append(server)
    port = free_port()
    conf = tmp_path / "nginx.conf"
    conf.write_text(nginx_conf([(b.name, f"127.0.0.1:{b.server_address[1]}") for b in backends], "127.0.0.1",
                               port, tmp_path))
    proxy = subprocess.Popen([nginx, "-p", str(tmp_path), "-c", str(conf), "-e", "stderr"])
    try:
        def get(cookie=None, **headers):
            request = urllib.request.Request(f"http://127.0.0.1:{port}/x", headers=headers)
            if cookie:
                request.add_header("Cookie", f"{COOKIE}={cookie}")
            for _ in range(100):
                try:
                    with urllib.request.urlopen(request, timeout=5) as r:
                        return r.read().decode(), r.headers
                except OSError:  # nginx is still starting
                    time.sleep(0.05)
            pytest.fail("nginx did not answer")

        fresh = [get() for _ in range(40)]
        for body, headers in fresh:  # a new visitor: a replica, named in the header and in a cookie
            name = headers["X-VAE-Replica"]
            assert body.startswith(name) and headers["Set-Cookie"].startswith(f"{COOKIE}={name};")
        assert {h["X-VAE-Replica"] for _, h in fresh} == {"r1", "r2"}  # chosen at random: 2^-39 to fail
        for name in ("r1", "r2"):  # a visitor with the cookie always reaches its replica, and gets no new cookie
            for _ in range(10):
                body, headers = get(name)
                assert body.startswith(name) and headers["X-VAE-Replica"] == name and "Set-Cookie" not in headers
        body, headers = get("r9")  # a cookie from a larger class: replaced by a fresh choice
        assert headers["Set-Cookie"].startswith(f"{COOKIE}={headers['X-VAE-Replica']};")
        body, _ = get("r1", Upgrade="websocket", Connection="Upgrade")  # a websocket's upgrade is passed on
        assert "upgrade=websocket" in body and "connection=upgrade" in body
        assert "connection=None" in get("r1")[0]  # other requests: a kept-alive HTTP/1.1 connection
    finally:
        proxy.terminate()
        proxy.wait(10)
        for server in backends:
            server.shutdown()


# -- the command, with two real replicas -----------------------------------------------------------------
class Served(App):
    """The running command: its proxy's URL, its output, the replicas' logs."""

    def __init__(self, url, out: Path, logs: Path, runs: Path, proc: subprocess.Popen):
        super().__init__(url, out, runs, proc.pid)
        self.logs, self.proc = logs, proc

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def log_tail(self, n: int = 4000) -> str:
        logs = [p.read_text(errors="replace")[-n:] for p in sorted(self.logs.glob("*.log"))]
        return "\n".join([self.output()[-n:], *logs])

    def replica_pids(self) -> dict[str, int]:
        """name -> pid of each replica running now (found by the port the command printed for it)."""
        ports = dict(re.findall(r"(r\d+) 127\.0\.0\.1:(\d+)", self.output().split("\n")[0]))
        pids = {}
        for pid in _descendants(self.proc.pid):
            try:
                cmd = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            for name, port in ports.items():
                if b"streamlit" in b" ".join(cmd) and port.encode() in cmd:
                    pids[name] = pid
        return pids

    def wait_for_output(self, pattern: str, timeout: float) -> re.Match:
        deadline = time.monotonic() + timeout
        while not (found := re.search(pattern, self.output())):
            assert time.monotonic() < deadline, f"the command never said {pattern!r}:\n{self.log_tail()}"
            assert self.proc.poll() is None or found, f"the command ended ({self.proc.returncode}):\n{self.log_tail()}"
            time.sleep(0.2)
        return found


def _descendants(pid: int) -> set[int]:
    parents = {}
    for stat_file in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat_file.read_text().rsplit(") ", 1)[1].split()
        except (OSError, IndexError):
            continue
        parents.setdefault(int(fields[1]), []).append(int(stat_file.parent.name))
    found, todo = set(), [pid]
    while todo:
        for child in parents.get(todo.pop(), []):
            found.add(child)
            todo.append(child)
    return found


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(") ", 1)[1][0] != "Z"
    except (OSError, IndexError):
        return False


@pytest.fixture(scope="module")
def served(tmp_path_factory, repo, nginx, z2):
    tmp = tmp_path_factory.mktemp("serve")
    runs, logs, out = tmp / "runs", tmp / "logs", tmp / "serve.out"
    runs.mkdir()
    # a third model in the library, so that three sessions can each choose another
    (runs / "copy").mkdir()
    shutil.copyfile(z2.path, runs / "copy" / "model.safetensors")
    port = free_port()
    env = {**os.environ, "VAE_RUNS_DIR": str(runs), "VAE_MAX_JOBS": "1", "VAE_TORCH_THREADS": "1"}
    env.pop("STREAMLIT_SERVER_COOKIE_SECRET", None)
    with open(out, "wb") as f:
        proc = subprocess.Popen([sys.executable, "-m", "vae", "serve", "--replicas", "2", "--port", str(port),
                                 "--log-dir", str(logs)], cwd=repo, env=env, stdout=f, stderr=subprocess.STDOUT)
    server = Served(f"http://127.0.0.1:{port}", out, logs, runs, proc)
    try:
        server.wait_for_output(r"is served at", 240)
        yield server
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            proc.wait(90)


def _session(browser, served, replica: str | None = None):
    """A new browser session (context); `replica` presets the proxy's cookie, as if chosen before. Records
    which replica answered each of its requests."""
    context = browser.new_context(viewport=VIEWPORT)
    if replica:
        context.add_cookies([{"name": COOKIE, "value": replica, "url": served.url}])
    page = context.new_page()
    page.set_default_timeout(60_000)
    page.replicas = []
    page.on("response", lambda r: page.replicas.append(r.headers.get("x-vae-replica"))
            if r.url.startswith(served.url) else None)
    return context, page


def _model_box(page):
    return page.locator(SIDEBAR).get_by_role("combobox", name="Model", exact=True)


def _choose(page, label: str) -> None:
    _model_box(page).click()
    page.get_by_role("option", name=label, exact=True).click()
    deadline = time.monotonic() + 60
    while _model_box(page).input_value() != label:
        assert time.monotonic() < deadline, f"the Model selector shows {_model_box(page).input_value()!r}"
        page.wait_for_timeout(100)
    page.wait_for_function(SETTLED, timeout=60_000)


def _drawn(page, closing: str) -> None:
    """The page's script has run to its end (its closing expander is drawn) and nothing is stale."""
    page.locator('[data-testid="stMain"] [data-testid="stExpander"]').filter(has_text=closing).wait_for(timeout=90_000)
    page.wait_for_function(SETTLED, timeout=60_000)


def _cookie(context) -> str | None:
    return next((c["value"] for c in context.cookies() if c["name"] == COOKIE), None)


@pytest.mark.slow
def test_every_replica_gets_the_class_settings_and_one_cookie_secret(served):
    pids = served.replica_pids()
    assert sorted(pids) == ["r1", "r2"]
    secret = (served.runs / SECRET_FILE).read_text().strip()
    for name, pid in pids.items():
        cmd = Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")
        flags = dict(itertools.pairwise(cmd))
        assert (flags["--server.address"], flags["--server.headless"], flags["--server.fileWatcherType"]) == (
            "127.0.0.1", "true", "none"), cmd
        env = dict(v.split("=", 1) for v in Path(f"/proc/{pid}/environ").read_bytes().decode().split("\0") if "=" in v)
        assert env["VAE_RUNS_DIR"] == str(served.runs) and env["VAE_MAX_JOBS"] == "1", name
        assert env["STREAMLIT_SERVER_COOKIE_SECRET"] == secret, name


@pytest.mark.browser
@pytest.mark.slow
def test_sessions_stay_on_their_replica_and_keep_their_own_model_across_pages(served, browser):
    # (session, its preset replica, the model it chooses): the third is a new visitor, given a replica at random
    plan = [("a", "r1", "Bundled: mnist-5k-z16"), ("b", "r2", "Run: copy"), ("c", None, "Bundled: mnist-5k-z2")]
    sessions = {}
    try:
        for name, replica, _ in plan:
            sessions[name] = _session(browser, served, replica)
            sessions[name][1].goto(served.url)  # all at once: the replicas draw them side by side
        for name, _, label in plan:
            page = sessions[name][1]
            _drawn(page, DRAWN["latent_space"][1])
            wait_for_plots(page, 1)
            if _model_box(page).input_value() != label:
                _choose(page, label)
        for name, _, _ in plan:  # to another page inside the session (a reload would be a new session)
            sessions[name][1].locator('[data-testid="stSidebarNav"]').get_by_role("link", name="Samples").click()
        for name, _, label in plan:
            page = sessions[name][1]
            _drawn(page, DRAWN["samples"][1])
            wait_for_images(page, 3)  # served from /media/ out of the replica that holds the session
            assert _model_box(page).input_value() == label, name
            assert_no_errors(page, served)
        seen = {name: set(sessions[name][1].replicas) for name, _, _ in plan}
        assert seen["a"] == {"r1"} and seen["b"] == {"r2"}, seen
        assert len(seen["c"]) == 1 and seen["c"] == {_cookie(sessions["c"][0])}, seen  # chosen once, then kept
    finally:
        for context, _ in sessions.values():
            context.close()


def _fill_training_form(page, run_name: str, epochs: int, batch: int) -> None:
    main = page.locator('[data-testid="stMain"]')
    main.locator('[data-testid="stSelectbox"]').filter(has_text="Data set").click()
    page.get_by_role("option", name="digits", exact=True).click()
    for label, value in (("Hidden widths", "16"), ("Epochs", str(epochs)), ("Batch size", str(batch)),
                         ("Run name", run_name)):
        (main.get_by_role("textbox", name=label, exact=True)
         .or_(main.get_by_role("spinbutton", name=label, exact=True))).fill(value)
    main.get_by_role("button", name="Start training").click()


def _wait_for_progress(page, pattern: str, timeout: float = 60) -> str:
    deadline, text = time.monotonic() + timeout, None
    while not (text and re.search(pattern, text)):
        assert time.monotonic() < deadline, f"the progress line reads {text!r}, never /{pattern}/"
        page.wait_for_timeout(200)
        text = page.evaluate(PROGRESS)
    return text


@pytest.mark.browser
@pytest.mark.slow
def test_a_run_started_behind_one_replica_trains_and_queues_behind_the_other(served, browser):
    (ca, a), (cb, b) = _session(browser, served, "r1"), _session(browser, served, "r2")
    try:
        open_page(a, served, "train")
        _fill_training_form(a, "first", epochs=1000, batch=20)  # trains until stopped
        _wait_for_progress(a, r"^Training: ")

        main_b = open_page(b, served, "train")  # the other replica: it shows the run, training
        _wait_for_progress(b, r"^Training \(started in another session\): \d+% done")
        assert main_b.get_by_role("combobox", name="Watch run").input_value() == "first"

        _fill_training_form(b, "second", epochs=2, batch=100)  # beyond VAE_MAX_JOBS=1: the one queue holds it
        _wait_for_progress(b, r"^Waiting in the queue: place 1\.$")
        main_b.get_by_text("Queue: 1. second", exact=True).wait_for()
        b.wait_for_timeout(2000)  # several of its polls for a slot: still waiting
        assert b.evaluate(PROGRESS) == "Waiting in the queue: place 1."

        a.locator('[data-testid="stMain"]').get_by_role("button", name="Stop").click()
        _wait_for_progress(a, r"^Stopped")
        _wait_for_progress(b, r"^Finished", timeout=120)  # it started once the slot was free, and finished
        assert (served.runs / "second" / "model.safetensors").is_file()

        # and the run trained behind r2 is in the model library of the session behind r1
        a.locator('[data-testid="stMain"] [data-testid="stSelectbox"]').filter(has_text="Watch run").click()
        a.get_by_role("option", name="second", exact=True).click()
        a.locator('[data-testid="stMain"]').get_by_text("Read from the run folder", exact=False).wait_for()
        _model_box(a).click()
        a.get_by_role("option", name="Run: second", exact=True).wait_for()
        a.keyboard.press("Escape")
        for page in (a, b):
            assert_no_errors(page, served)
        assert set(a.replicas) == {"r1"} and set(b.replicas) == {"r2"}
    finally:
        ca.close()
        cb.close()


@pytest.mark.slow
def test_a_dead_replica_is_reported_and_the_command_stops_everything_it_started(served):
    pids = served.replica_pids()
    os.kill(pids["r2"], signal.SIGKILL)
    served.wait_for_output(r"replica r2 \(port \d+\) died with code -9", 30)
    served.wait_for_output(r"starting replica r2 again", 10)
    deadline = time.monotonic() + 120
    while True:  # the restarted replica answers behind the proxy
        request = urllib.request.Request(f"{served.url}/_stcore/health", headers={"Cookie": f"{COOKIE}=r2"})
        try:
            with urllib.request.urlopen(request, timeout=5) as r:
                if r.read() == b"ok" and r.headers["X-VAE-Replica"] == "r2":
                    break
        except OSError:
            pass
        assert time.monotonic() < deadline, f"replica r2 did not come back:\n{served.log_tail()}"
        time.sleep(0.5)

    started = _descendants(served.proc.pid)  # nginx (master, worker) and both replicas, at least
    assert len(started) >= 4, started
    served.proc.send_signal(signal.SIGTERM)
    assert served.proc.wait(90) == 0
    assert served.output().rstrip().endswith("stopped.")
    assert not [pid for pid in started if _alive(pid)], f"left running: {started}"
    with pytest.raises(OSError):  # nothing listens on the proxy's port any more
        urllib.request.urlopen(f"{served.url}/_stcore/health", timeout=5)
