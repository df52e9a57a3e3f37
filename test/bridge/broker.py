"""A private rabbitmq-server node for tests and benchmarks: its own node name, AMQP,
distribution and epmd ports, data and log directories, so it collides with nothing.
As root the Debian wrappers run the server as the rabbitmq user (the directories are
given to that user); otherwise the server runs as the caller with HOME in the private
directory, so the Erlang cookie is the same for the server and rabbitmqctl."""
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Broker:
    def __init__(self):
        if not shutil.which("rabbitmq-server", path="/usr/sbin:/usr/bin:" + os.environ.get("PATH", "")):
            raise RuntimeError("rabbitmq-server is not installed: run .ci/install-deps")
        self.dir = tempfile.mkdtemp(prefix="shmq-rabbit-")
        os.chmod(self.dir, 0o755)
        self.port = free_port()
        self.name = "shmqtest%d@localhost" % os.getpid()
        self.root = os.getuid() == 0
        plugins = os.path.join(self.dir, "enabled_plugins")
        with open(plugins, "w") as f:
            f.write("[].\n")
        self.env = dict(os.environ,
                        RABBITMQ_NODENAME=self.name,
                        RABBITMQ_NODE_IP_ADDRESS="127.0.0.1",
                        RABBITMQ_NODE_PORT=str(self.port),
                        RABBITMQ_DIST_PORT=str(free_port()),
                        ERL_EPMD_PORT=str(free_port()),
                        RABBITMQ_MNESIA_BASE=os.path.join(self.dir, "mnesia"),
                        RABBITMQ_LOG_BASE=os.path.join(self.dir, "log"),
                        RABBITMQ_PID_FILE=os.path.join(self.dir, "pid"),
                        RABBITMQ_ENABLED_PLUGINS_FILE=plugins,
                        RABBITMQ_CONFIG_FILE=os.path.join(self.dir, "none"),
                        RABBITMQ_ADVANCED_CONFIG_FILE=os.path.join(self.dir, "none-advanced.config"))
        if self.root:
            self.sbin = "/usr/sbin/"
            u = pwd.getpwnam("rabbitmq")
            for p in ("mnesia", "log"):
                os.makedirs(os.path.join(self.dir, p))
            for root, dirs, files in os.walk(self.dir):
                for n in [root] + [os.path.join(root, d) for d in dirs] + [os.path.join(root, f) for f in files]:
                    os.chown(n, u.pw_uid, u.pw_gid)
        else:
            self.sbin = "/usr/lib/rabbitmq/bin/"
            self.env["HOME"] = self.dir
        self.url = "amqp://guest:guest@127.0.0.1:%d" % self.port  # no trailing "/": that would be vhost ""
        self.proc = None
        # Our own epmd on its own port, in the foreground, so that we hold its pid.
        self.epmd = subprocess.Popen(["epmd", "-port", self.env["ERL_EPMD_PORT"]], env=self.env,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                     start_new_session=True)

    def ctl(self, *args, timeout=60):
        return subprocess.run([self.sbin + "rabbitmqctl", "-n", self.name, *args], env=self.env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=timeout, text=True)

    def start(self):
        # Foreground (not -detached, which in 3.10.8 returns before the boot) in its own
        # process group, so that stop() reaches the whole tree.
        self.log = open(os.path.join(self.dir, "server.out"), "a")
        self.proc = subprocess.Popen([self.sbin + "rabbitmq-server"], env=self.env, stdout=self.log,
                                     stderr=subprocess.STDOUT, start_new_session=True, cwd=self.dir)
        # await_startup fails at once while the VM is not reachable yet: try again until
        # the node answers, as long as the server lives (a generous bound).
        deadline = time.monotonic() + 120
        while True:
            r = self.ctl("await_startup", "--timeout", "120", timeout=150)
            if r.returncode == 0 or self.proc.poll() is not None or time.monotonic() > deadline:
                break
            time.sleep(0.2)  # not a synchronisation: a retry interval for an external program
        if r.returncode != 0:
            self.stop()
            raise RuntimeError("rabbitmq-server did not start: " + r.stdout + self.tail())

    def tail(self):
        try:
            with open(os.path.join(self.dir, "server.out")) as f:
                return f.read()[-3000:]
        except OSError:
            return ""

    def stop(self):
        """Stops the node this object started (graceful, then its process group by pid)."""
        if self.proc is None:
            return
        self.ctl("stop", timeout=60)
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            pass
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait()
        self.proc = None
        self.log.close()

    def close(self):
        self.stop()
        self.epmd.kill()
        self.epmd.wait()
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.close()
