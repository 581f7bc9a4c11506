"""`python -m vae serve --replicas N --port P`: one class on every core.

One Streamlit process runs its page scripts on about one core (they share its interpreter lock), so
this command starts N `streamlit run app.py` servers (replicas) on free loopback ports and nginx in
front of them on --address:--port, runs them in the foreground and stops them all when it ends
(Ctrl-C, SIGTERM; if it is killed outright, the kernel sends each of them SIGTERM). A replica that
dies is reported with the end of its log and started again, up to MAX_RESTARTS times.

Every replica gets the same settings (the README's "Serving a class" table: VAE_RUNS_DIR, VAE_READ_ONLY,
VAE_MAX_JOBS, VAE_TORCH_THREADS) and the same cookie secret, and is started with
`--server.fileWatcherType none --server.headless true`, bound to 127.0.0.1 only. The runs folder is the
one model library, and its `.jobs/` files make the training limit hold across replicas (vae.job_queue).

Sticky sessions. A Streamlit session lives in the memory of the replica whose websocket it is, and so
do the images it serves under /media/: every request of a browser must reach that replica. nginx's
open-source edition has no `sticky cookie`, and `ip_hash` would send every visitor behind one address
(a school's NAT, or localhost in a test) to one replica. So the proxy sets its own cookie: a request
without a valid `vae_replica` cookie is given a replica at random (`split_clients` on the request's
random id) and a Set-Cookie naming it; every request that carries the cookie (page, static files,
/media, the websocket) goes to the replica it names (`map`). Each response names its replica in the
X-VAE-Replica header. The cookie lasts for the browser's session; an unknown value (after a restart
with fewer replicas) is replaced by a fresh choice.

Several machines: `--upstream HOST:PORT` (repeatable) puts replicas that run elsewhere behind the same
proxy, as h1, h2, ...; they are started by hand on their hosts with the same settings, the runs folder
on shared storage and the same cookie secret (README, "Serving a class"). This command neither starts
nor stops them; `--replicas 0` makes it the proxy alone.
"""
from __future__ import annotations

import ctypes
import math
import os
import pwd
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
COOKIE = "vae_replica"
HEADER = "X-VAE-Replica"
SECRET_FILE = ".cookie-secret"  # in the runs folder, mode 0600, unless STREAMLIT_SERVER_COOKIE_SECRET is set
NGINX_PATHS = ("/usr/sbin/nginx", "/usr/local/sbin/nginx")  # Debian's package; PATH is searched first
START_S = 180.0  # how long a replica may take to answer its health check (imports, on a busy machine)
STOP_S = 15.0  # how long a replica (and its training processes) may take to stop before it is killed
MAX_RESTARTS = 3  # a replica that keeps dying is left down, said so
MAX_UPLOAD_MB = 200  # Streamlit's server.maxUploadSize in .streamlit/config.toml; the proxy must not refuse less


class ServeError(RuntimeError):
    """The class cannot be served as asked; the message is one sentence."""


@dataclass(frozen=True)
class ClassSettings:
    """The settings every replica gets, as environment variables (ui.state.settings reads them)."""
    runs_dir: Path
    read_only: bool
    max_jobs: int
    torch_threads: int

    def env(self) -> dict[str, str]:
        return {"VAE_RUNS_DIR": str(self.runs_dir), "VAE_READ_ONLY": "1" if self.read_only else "0",
                "VAE_MAX_JOBS": str(self.max_jobs), "VAE_TORCH_THREADS": str(self.torch_threads)}


@dataclass
class Replica:
    name: str  # r1, r2, ...: the cookie's value and the response header's
    port: int
    log: Path
    proc: subprocess.Popen | None = None
    deaths: int = 0
    down: bool = False  # died more than MAX_RESTARTS times: left down


# -- the pieces, each testable alone ------------------------------------------------------------------
def settings_from(env: dict[str, str], *, runs_dir: str | None = None, read_only: bool = False,
                  max_jobs: int | None = None, torch_threads: int | None = None) -> ClassSettings:
    """The command's options, else the environment, else the app's own defaults (ui/state.py)."""
    try:
        jobs = max_jobs if max_jobs is not None else int(env.get("VAE_MAX_JOBS", "1"))
        threads = torch_threads if torch_threads is not None else int(env.get("VAE_TORCH_THREADS", "1"))
    except ValueError as err:
        raise ServeError(f"VAE_MAX_JOBS and VAE_TORCH_THREADS must be whole numbers ({err}).") from None
    if jobs < 1 or threads < 1:
        raise ServeError("the training job limit and the torch thread count must be at least 1.")
    root = Path(runs_dir or env.get("VAE_RUNS_DIR") or REPO / "runs").expanduser().resolve()
    return ClassSettings(runs_dir=root, max_jobs=jobs, torch_threads=threads,
                         read_only=read_only or env.get("VAE_READ_ONLY", "").lower() in ("1", "true", "yes"))


def cookie_secret(runs_dir: Path, env: dict[str, str]) -> str:
    """One secret for every replica (Streamlit signs its XSRF cookie with it): the environment's, else the
    runs folder's, made once. Made by linking a finished 0600 file into place, so two commands started
    at once agree on one secret and neither reads a half-written file."""
    given = env.get("STREAMLIT_SERVER_COOKIE_SECRET")
    if given:
        return given
    runs_dir.mkdir(parents=True, exist_ok=True)
    path = runs_dir / SECRET_FILE
    if not path.exists():
        tmp = runs_dir / f".{SECRET_FILE}.{os.getpid()}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            os.fchmod(f.fileno(), 0o600)  # whatever the umask
            f.write(secrets.token_hex(32) + "\n")
            f.flush()
            os.fsync(f.fileno())
        try:
            os.link(tmp, path)
        except FileExistsError:  # another command made it first: use theirs
            pass
        finally:
            tmp.unlink()
    if path.stat().st_mode & 0o077:
        os.chmod(path, 0o600)  # a copy restored with looser permissions: only this user may read it
    secret = path.read_text().strip()
    if len(secret) < 32:
        raise ServeError(f"{path} holds no usable cookie secret; delete it and start again.")
    return secret


def parse_upstream(text: str) -> str:
    """HOST:PORT of a replica on another machine, as nginx's `server` line takes it."""
    host, _, port = text.rpartition(":")
    # An allowlist (names, IPv4, bracketed IPv6): the value is written into nginx's configuration.
    host_ok = re.fullmatch(r"[A-Za-z0-9.\-]+|\[[0-9A-Fa-f:.]+\]", host)
    if not host_ok or not port.isdigit() or not 1 <= int(port) <= 65535:
        raise ServeError(f"--upstream takes HOST:PORT (such as 10.0.0.11:8501), got {text!r}.")
    return text


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def check_port(address: str, port: int) -> None:
    """Refuse at once, before starting anything, a port nginx could not bind."""
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    with socket.socket(family) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as nginx does
        try:
            s.bind((address, port))
        except OSError as err:
            raise ServeError(f"cannot listen on {address}:{port} ({err.strerror}); choose another --port "
                             "or --address.") from None


def find_nginx() -> str:
    found = shutil.which("nginx") or next((p for p in NGINX_PATHS if os.access(p, os.X_OK)), None)
    if not found:
        raise ServeError("nginx is not installed; on Debian or Ubuntu: apt-get install nginx.")
    return found


def nginx_conf(replicas: list[tuple[str, str]], address: str, port: int, workdir: Path) -> str:
    """The proxy's whole configuration: `replicas` are (name, "host:port") pairs. Everything nginx writes
    (pid, temp files) stays in `workdir`; errors go to the command's stderr; it runs in the foreground."""
    names = [name for name, _ in replicas]
    share = math.floor(10_000 / len(names)) / 100  # split_clients takes percentages with two decimals
    split = "".join(f"        {share:.2f}% {n};\n" for n in names[:-1]) + f"        * {names[-1]};\n"
    known = "".join(f"        {n} {n};\n" for n in names)
    kept = "".join(f'        {n} "";\n' for n in names)
    upstreams = "".join(f"    upstream {n} {{ server {hostport}; keepalive 8; }}\n" for n, hostport in replicas)
    listen = f"[{address}]:{port}" if ":" in address else f"{address}:{port}"
    # As root, nginx would hand its workers to `nobody`, who cannot enter our private work folder; they
    # run as the user who ran the command (as anyone else, nginx cannot change user and needs no line).
    user = f"user {pwd.getpwuid(os.geteuid()).pw_name};\n" if os.geteuid() == 0 else ""
    return f"""# Written by `python -m vae serve`; nginx runs in the foreground under that command.
daemon off;
{user}worker_processes 1;  # proxying is waiting on sockets: one worker serves thousands; the cores are the replicas'
pid {workdir}/nginx.pid;
error_log stderr warn;
events {{ worker_connections 2048; }}

http {{
    access_log off;
    client_body_temp_path {workdir}/client_body_temp;
    proxy_temp_path {workdir}/proxy_temp;
    fastcgi_temp_path {workdir}/fastcgi_temp;
    uwsgi_temp_path {workdir}/uwsgi_temp;
    scgi_temp_path {workdir}/scgi_temp;
    client_max_body_size {MAX_UPLOAD_MB + 1}m;  # the app's upload limit, plus the form's overhead

    # Sticky sessions: a new browser is given a replica at random and keeps it in a cookie.
    split_clients "${{request_id}}" $vae_new_replica {{
{split}    }}
    map $cookie_{COOKIE} $vae_replica {{
        default $vae_new_replica;
{known}    }}
    map $cookie_{COOKIE} $vae_set_cookie {{
        default "{COOKIE}=$vae_new_replica; Path=/; HttpOnly; SameSite=Lax";
{kept}    }}
    # The websocket's upgrade is passed on; other requests keep their connection to the replica alive.
    map $http_upgrade $vae_connection {{
        default upgrade;
        "" "";
    }}
{upstreams}
    server {{
        listen {listen};
        location / {{
            proxy_pass http://$vae_replica;
            proxy_http_version 1.1;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection $vae_connection;
            proxy_set_header Host $http_host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto $scheme;
            proxy_read_timeout 1d;  # a websocket is quiet while a student reads
            proxy_send_timeout 1d;
            proxy_buffering off;  # the websocket's messages and large downloads go through as they come
            proxy_request_buffering off;  # so do uploads
            add_header {HEADER} $vae_replica always;
            add_header Set-Cookie $vae_set_cookie always;  # an empty value (cookie already valid) sends none
        }}
    }}
}}
"""


def replica_command(port: int) -> list[str]:
    return [sys.executable, "-m", "streamlit", "run", str(REPO / "app.py"), "--server.port", str(port),
            "--server.address", "127.0.0.1", "--server.headless", "true", "--server.fileWatcherType", "none"]


def replica_env(settings: ClassSettings, secret: str, base: dict[str, str]) -> dict[str, str]:
    """The command's environment with the class's settings; the secret travels here, not on a command
    line that `ps` shows. One BLAS thread per replica unless asked otherwise: N replicas share the cores."""
    env = {**base, **settings.env(), "STREAMLIT_SERVER_COOKIE_SECRET": secret}
    env.setdefault("OMP_NUM_THREADS", str(settings.torch_threads))
    return env


def _die_with_parent() -> None:
    """In the child, before exec: SIGTERM when the command dies, even by kill -9 (Linux's PR_SET_PDEATHSIG)."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # 1 = PR_SET_PDEATHSIG
    except (OSError, AttributeError):  # not Linux: Ctrl-C and SIGTERM still stop everything
        pass


def _healthy(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2) as r:
            return r.read().strip() == b"ok"
    except OSError:
        return False


def _tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def _say(text: str) -> None:
    print(f"serve: {text}", file=sys.stderr, flush=True)


# -- the class: start, watch, stop -----------------------------------------------------------------
class Class:
    def __init__(self, replicas: int, address: str, port: int, settings: ClassSettings, log_dir: Path | None,
                 upstreams: list[str] = ()):
        if not 0 <= replicas <= 64 or replicas + len(upstreams) == 0:
            raise ServeError(f"--replicas must be between 1 and 64 (0 with --upstream), got {replicas}.")
        self.upstreams = [(f"h{k}", parse_upstream(u)) for k, u in enumerate(upstreams, start=1)]
        if not 1 <= port <= 65535:
            raise ServeError(f"--port must be between 1 and 65535, got {port}.")
        self.address, self.port, self.settings = address, port, settings
        self.nginx_bin = find_nginx()
        check_port(address, port)
        # (a proxy with no replica of its own needs no secret, nor the runs folder)
        self.env = replica_env(settings, cookie_secret(settings.runs_dir, dict(os.environ)), dict(os.environ)) \
            if replicas else {}
        self.workdir = Path(tempfile.mkdtemp(prefix="vae-serve-"))
        self.log_dir = Path(log_dir) if log_dir else self.workdir
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.replicas = [Replica(f"r{k}", free_port(), self.log_dir / f"r{k}.log") for k in range(1, replicas + 1)]
        self.nginx: subprocess.Popen | None = None

    def _spawn(self, command: list[str], **kw) -> subprocess.Popen:
        # Its own session: Ctrl-C reaches only this command, which stops the others in order.
        return subprocess.Popen(command, start_new_session=True, preexec_fn=_die_with_parent, **kw)

    def _start_replica(self, r: Replica) -> None:
        with open(r.log, "ab") as log:
            r.proc = self._spawn(replica_command(r.port), cwd=REPO, env=self.env, stdin=subprocess.DEVNULL,
                                 stdout=log, stderr=subprocess.STDOUT)

    def start(self, stopping) -> bool:
        """Start the replicas, wait until each answers, then nginx; False if `stopping()` came first."""
        for r in self.replicas:
            self._start_replica(r)
        waiting, deadline = list(self.replicas), time.monotonic() + START_S
        while waiting:
            if stopping():
                return False
            for r in list(waiting):
                if r.proc.poll() is not None:
                    raise ServeError(f"replica {r.name} exited with code {r.proc.returncode} while starting; "
                                     f"its log ends:\n{_tail(r.log)}")
                if _healthy(r.port):
                    waiting.remove(r)
            if time.monotonic() > deadline:
                raise ServeError(f"replica {waiting[0].name} did not answer within {START_S:.0f} s; its log ends:\n"
                                 f"{_tail(waiting[0].log)}")
            time.sleep(0.25)
        conf = self.workdir / "nginx.conf"
        conf.write_text(nginx_conf([(r.name, f"127.0.0.1:{r.port}") for r in self.replicas] + self.upstreams,
                                   self.address, self.port, self.workdir))
        # -e: the error log before the configuration is read (Debian's default, /var/log/nginx, is root's)
        self.nginx = self._spawn([self.nginx_bin, "-p", str(self.workdir), "-c", str(conf), "-e", "stderr"],
                                 stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + 15
        while not self._proxy_answers():
            if self.nginx.poll() is not None:
                raise ServeError(f"nginx exited with code {self.nginx.returncode} (its error is above).")
            if time.monotonic() > deadline:
                raise ServeError("nginx did not answer within 15 s.")
            time.sleep(0.1)
        return True

    def _proxy_answers(self) -> bool:
        """nginx is listening: any HTTP answer counts (another machine's replica may not be up yet)."""
        host = "127.0.0.1" if self.address in ("0.0.0.0", "") else ("::1" if self.address == "::" else self.address)
        host = f"[{host}]" if ":" in host else host
        try:
            with urllib.request.urlopen(f"http://{host}:{self.port}/_stcore/health", timeout=2):
                return True
        except urllib.error.HTTPError:  # e.g. 502 from a replica that is down: nginx itself answered
            return True
        except OSError:
            return False

    def watch(self, stopping) -> int:
        """Until `stopping()` is true: report (and restart) a replica that dies; end if nginx does."""
        while not stopping():
            if self.nginx.poll() is not None:
                _say(f"nginx exited with code {self.nginx.returncode}; stopping the replicas.")
                return 1
            for r in self.replicas:
                if r.down or r.proc.poll() is None:
                    continue
                r.deaths += 1
                _say(f"replica {r.name} (port {r.port}) died with code {r.proc.returncode}; the sessions it "
                     f"served are lost (their pages must be reloaded). Its log ends:\n{_tail(r.log)}")
                if r.deaths > MAX_RESTARTS:
                    r.down = True
                    _say(f"replica {r.name} died {r.deaths} times: it stays down, and its visitors get errors.")
                else:
                    _say(f"starting replica {r.name} again (restart {r.deaths} of {MAX_RESTARTS}).")
                    self._start_replica(r)
            if self.replicas and all(r.down for r in self.replicas):
                _say("every replica is down; stopping.")
                return 1
            time.sleep(0.5)
        return 0

    def stop(self) -> None:
        """nginx first (no new requests), then every replica; each replica's training processes read the
        end of their input and stop as Stop does. Whatever is left after STOP_S is killed."""
        if self.nginx is not None:
            _stop_group(self.nginx, signal.SIGTERM)  # nginx's fast shutdown: websockets never close by themselves
        procs = [r.proc for r in self.replicas if r.proc is not None]
        for proc in procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)  # Streamlit's own graceful stop
        for proc in procs:
            _stop_group(proc, None)
        shutil.rmtree(self.workdir, ignore_errors=True)


def _stop_group(proc: subprocess.Popen, sig: int | None) -> None:
    """Signal `proc` (when sig is given), wait for it and its process group to end, kill what remains."""
    if sig is not None and proc.poll() is None:
        proc.send_signal(sig)
    deadline = time.monotonic() + STOP_S
    try:
        proc.wait(timeout=STOP_S)
    except subprocess.TimeoutExpired:
        pass
    while time.monotonic() < deadline and _group_alive(proc.pid):  # e.g. a training process saving its epoch
        time.sleep(0.1)
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        pass


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True


def serve(replicas: int, address: str, port: int, settings: ClassSettings, log_dir: str | None = None,
          upstreams: list[str] = ()) -> int:
    """The command: start the class, print where it is, watch it until Ctrl-C or SIGTERM, stop it."""
    stop_requested = []

    def on_signal(signum, _frame):
        stop_requested.append(signum)

    klass = Class(replicas, address, port, settings, Path(log_dir) if log_dir else None, list(upstreams))
    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    try:
        _say(f"starting {replicas} replica(s) on {', '.join(f'{r.name} 127.0.0.1:{r.port}' for r in klass.replicas)}; "
             f"runs folder {settings.runs_dir}; at most {settings.max_jobs} training job(s) at once"
             + ("; read-only" if settings.read_only else "") + f"; logs in {klass.log_dir}"
             + "".join(f"; {name} {where} (another machine's)" for name, where in klass.upstreams))
        code = 0
        if klass.start(lambda: bool(stop_requested)):
            shown = f"[{address}]" if ":" in address else address
            _say(f"VAE Explorer is served at http://{shown}:{port}/ by nginx in front of "
                 f"{replicas + len(klass.upstreams)} replica(s). "
                 "Ctrl-C stops them all.")
            code = klass.watch(lambda: bool(stop_requested))
    finally:
        _say("stopping nginx and the replicas…")
        klass.stop()
        for s, handler in previous.items():
            signal.signal(s, handler)
    _say("stopped.")
    return code
