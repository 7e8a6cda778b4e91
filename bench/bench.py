#!/usr/bin/env python3
"""popvault benchmark harness (issue #6). Run it through bench/run.sh, which installs the
peers, builds popvault and the C tools, and passes --popvault/--tools.

One run: generate (or reuse) the deterministic mailboxes, start a private Dovecot inside
its own network namespace, build a 20 ms RTT link to a second namespace, then time the raw
floor, popvault, mpop, fetchmail and getmail6 in rounds (each round runs every client once,
in a fixed order, so a ratio popvault/peer compares runs minutes apart at most), plus the
no-new-mail poll, the verified delete pass and the 200 MB message. Prints the tables
(markdown) and writes WORK/results/<time>.{json,md}.
"""

import argparse
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
NS_SRV, NS_CLI = "pvbench-srv", "pvbench-cli"
DEV_SRV, DEV_CLI = "pvb0", "pvb1"
ADDR_SRV, ADDR_CLI = "198.18.0.1", "198.18.0.2"
PORT = 995
MAIL_OWNER = "nobody"
MB = 1_000_000


def log(msg):
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def run(cmd, check=True, **kw):
    r = subprocess.run(cmd, text=True, capture_output=True, **kw)
    if check and r.returncode != 0:
        raise RuntimeError(f"{' '.join(map(str, cmd))} failed ({r.returncode}): {r.stderr.strip()[-2000:]}")
    return r


def in_ns(ns, cmd):
    return ["nsenter", f"--net=/run/netns/{ns}"] + [str(c) for c in cmd]


def loadavg():
    return float(Path("/proc/loadavg").read_text().split()[0])


def link_counters():
    """Packets the 20 ms link lost: drops at both TUN devices' queues (the forwarder did not read
    them in time) and TCP segments either namespace had to send again."""
    drops = retrans = 0
    for ns, dev in ((NS_SRV, DEV_SRV), (NS_CLI, DEV_CLI)):
        r = run(["ip", "-n", ns, "-s", "-j", "link", "show", "dev", dev], check=False)
        try:
            st = json.loads(r.stdout)[0]["stats64"]
            drops += st["tx"]["dropped"] + st["rx"]["dropped"]
        except (ValueError, LookupError):
            pass
        r = run(["ip", "netns", "exec", ns, "nstat", "-az", "TcpRetransSegs"], check=False)
        for ln in r.stdout.splitlines():
            if ln.startswith("TcpRetransSegs"):
                retrans += int(ln.split()[1])
    return drops, retrans


def cpu_jiffies():
    """(busy, total) jiffies of the whole machine, from /proc/stat."""
    f = [int(x) for x in Path("/proc/stat").read_text().split("\n")[0].split()[1:]]
    idle = f[3] + f[4]
    return sum(f[:8]) - idle, sum(f[:8])


def children_cpu(pid):
    """CPU seconds of a process's reaped children (Dovecot's master: its login and pop3 processes)."""
    try:
        f = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(f[13]) + int(f[14])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError):
        return 0.0


class Bench:
    def __init__(self, a):
        self.a = a
        self.work = Path(a.work).resolve()
        self.popvault = Path(a.popvault).resolve()
        self.tools = Path(a.tools).resolve()
        self.smoke = a.smoke
        self.results = {"sections": {}, "failures": [], "notes": []}
        self.dovecot_pid = None
        self.delaylink = None
        if self.smoke:
            self.n_archive, self.bytes_archive = a.count or 300, (a.count or 300) * 42_000
            self.n_poll, self.huge_size, self.runs = 5000, 20_000_000, 1
        else:
            self.n_archive, self.bytes_archive = a.count or 5000, (a.count or 5000) * 42_000
            self.n_poll, self.huge_size, self.runs = 50_000, 200_000_000, a.runs
        self.slow_runs = a.slow_runs
        self.links = ["loopback"] if (self.smoke or a.loopback_only) else ["loopback", "rtt20"]

    # ---------------------------------------------------------------- set-up
    def data_dir(self, profile, **params):
        key = "-".join([profile] + [f"{k}{v}" for k, v in sorted(params.items())])
        d = self.work / "data" / key
        stamp = d / "stats.json"
        gen = HERE / "gen_mailbox.py"
        want = {"gen_mtime": int(gen.stat().st_mtime), **params}
        if stamp.exists():
            st = json.loads(stamp.read_text())
            if st.get("want") == want:
                return d, st
        shutil.rmtree(d, ignore_errors=True)
        log(f"generating {key} ...")
        args = [sys.executable, str(gen), str(d / "Maildir"), "--profile", profile, "--seed", str(self.a.seed)]
        if "count" in params:
            args += ["--count", str(params["count"])]
        if "total" in params:
            args += ["--total-bytes", str(params["total"])]
        if "size" in params:
            args += ["--size", str(params["size"])]
        st = json.loads(run(args).stdout)
        st["want"] = want
        stamp.write_text(json.dumps(st))
        return d, st

    def make_tls(self):
        t = self.work / "tls"
        if (t / "server.pem").exists():
            return
        t.mkdir(parents=True, exist_ok=True)
        run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
             "-days", "3650", "-subj", "/O=popvault bench/CN=popvault bench CA", "-keyout", t / "ca.key",
             "-out", t / "ca.pem", "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign"])
        run(["openssl", "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
             "-subj", "/O=popvault bench/CN=localhost", "-keyout", t / "server.key", "-out", t / "server.csr"])
        (t / "server.ext").write_text(
            f"subjectAltName=DNS:localhost,IP:127.0.0.1,IP:{ADDR_SRV}\nbasicConstraints=critical,CA:FALSE\n"
            "keyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n")
        run(["openssl", "x509", "-req", "-in", t / "server.csr", "-CA", t / "ca.pem", "-CAkey", t / "ca.key",
             "-CAcreateserial", "-days", "3650", "-extfile", t / "server.ext", "-out", t / "server.pem"])
        os.chmod(t / "server.key", 0o600)

    def cleanup_netns(self):
        for ns in (NS_SRV, NS_CLI):
            if Path(f"/run/netns/{ns}").exists():
                # Only processes of an earlier bench run live in these namespaces.
                pids = run(["ip", "netns", "pids", ns], check=False).stdout.split()
                for p in pids:
                    try:
                        os.kill(int(p), signal.SIGTERM)
                    except OSError:
                        pass
                time.sleep(0.5 if pids else 0)
                run(["ip", "netns", "del", ns], check=False)

    def setup_netns(self):
        self.cleanup_netns()
        for ns in (NS_SRV, NS_CLI):
            run(["ip", "netns", "add", ns])
            run(["ip", "-n", ns, "link", "set", "lo", "up"])
        ready = self.work / "run" / "delaylink.ready"
        ready.unlink(missing_ok=True)
        half = int(self.a.rtt_ms * 1000 / 2)
        self.delaylink = subprocess.Popen(
            [self.tools / "delaylink", "--ns-a", f"/run/netns/{NS_SRV}", "--dev-a", DEV_SRV,
             "--ns-b", f"/run/netns/{NS_CLI}", "--dev-b", DEV_CLI, "--delay-us", str(half),
             "--mtu", str(self.a.mtu), "--ready", ready],
            stdout=subprocess.DEVNULL, stderr=open(self.work / "run" / "delaylink.log", "w"))
        for _ in range(100):
            if ready.exists():
                break
            if self.delaylink.poll() is not None:
                raise RuntimeError("delaylink exited: " + (self.work / "run" / "delaylink.log").read_text())
            time.sleep(0.05)
        for ns, dev, mine, peer in ((NS_SRV, DEV_SRV, ADDR_SRV, ADDR_CLI), (NS_CLI, DEV_CLI, ADDR_CLI, ADDR_SRV)):
            run(["ip", "-n", ns, "addr", "add", mine, "peer", peer, "dev", dev])
            # The forwarder reads each device once per tick: 10,000 packets (15 MB) of queue
            # instead of 500, or a busy machine makes the link drop what a real one would not.
            run(["ip", "-n", ns, "link", "set", dev, "mtu", str(self.a.mtu), "txqueuelen", "10000", "up"])
        log(f"delay link up: {NS_CLI} {ADDR_CLI} <-> {NS_SRV} {ADDR_SRV}, {self.a.rtt_ms} ms RTT, MTU {self.a.mtu}")

    def dovecot_conf(self):
        d = self.work / "dovecot"
        for sub in ("run", "state", "log"):
            (d / sub).mkdir(parents=True, exist_ok=True)
        uid = int(run(["id", "-u", MAIL_OWNER]).stdout)
        gid = int(run(["id", "-g", MAIL_OWNER]).stdout)
        with open(d / "passwd", "w") as f:
            for u in self.users:
                f.write(f"{u}:{{PLAIN}}{self.password(u)}:{uid}:{gid}::{self.work}/mail/{u}::\n")
        t = self.work / "tls"
        (d / "dovecot.conf").write_text(f"""# popvault bench: private Dovecot, network namespace {NS_SRV} only
base_dir = {d}/run
state_dir = {d}/state
instance_name = popvault-bench
log_path = {d}/log/dovecot.log
info_log_path = {d}/log/dovecot.log
protocols = pop3
listen = 127.0.0.1, {ADDR_SRV}
shutdown_clients = yes
ssl = required
ssl_cert = <{t}/server.pem
ssl_key = <{t}/server.key
ssl_dh = </usr/share/dovecot/dh.pem
ssl_min_protocol = TLSv1.3
auth_mechanisms = plain login cram-md5 scram-sha-1 scram-sha-256
auth_failure_delay = 0
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {d}/passwd
}}
userdb {{
  driver = passwd-file
  args = username_format=%u {d}/passwd
}}
first_valid_uid = 1
mail_location = maildir:~/Maildir
mail_max_userip_connections = 100
pop3_uidl_format = %08Xu%08Xv
pop3_no_flag_updates = yes
pop3_fast_size_lookups = yes
service pop3-login {{
  inet_listener pop3 {{
    port = 0
  }}
  inet_listener pop3s {{
    port = {PORT}
    ssl = yes
  }}
}}
""")
        return d

    def start_dovecot(self):
        d = self.dovecot_conf()
        # stdio to a file: the daemon keeps it open, a pipe would never see EOF.
        with open(d / "log" / "startup.log", "a") as f:
            subprocess.run(in_ns(NS_SRV, ["dovecot", "-c", d / "dovecot.conf"]), stdin=subprocess.DEVNULL,
                           stdout=f, stderr=f, check=True)
        for _ in range(100):
            pidf = d / "run" / "master.pid"
            if pidf.exists() and pidf.read_text().strip():
                self.dovecot_pid = int(pidf.read_text())
                break
            time.sleep(0.05)
        for _ in range(100):
            if run(in_ns(NS_SRV, ["bash", "-c", f"exec 3<>/dev/tcp/127.0.0.1/{PORT}"]), check=False).returncode == 0:
                log(f"dovecot up (pid {self.dovecot_pid}) in {NS_SRV} on 127.0.0.1:{PORT} and {ADDR_SRV}:{PORT}")
                return
            time.sleep(0.1)
        raise RuntimeError("dovecot did not start: see " + str(d / "log"))

    def stop_dovecot(self):
        pid = self.dovecot_pid
        if not pid:
            return
        try:
            if Path(f"/proc/{pid}/comm").read_text().strip() == "dovecot":
                os.kill(pid, signal.SIGTERM)
                for _ in range(100):
                    if not Path(f"/proc/{pid}").exists():
                        break
                    time.sleep(0.1)
        except OSError:
            pass
        self.dovecot_pid = None

    @staticmethod
    def password(user):
        return f"pw-{user}-bench"

    def mailbox(self, user, src_maildir):
        """USER's Maildir = hard links to the generated files (Dovecot never rewrites a message file)."""
        home = self.work / "mail" / user
        if home.exists():
            shutil.rmtree(home)
        home.mkdir(parents=True)
        run(["cp", "-al", src_maildir, home / "Maildir"])
        run(["chown", "-R", f"{MAIL_OWNER}:", home])
        os.chmod(home, 0o755)

    def snapshot_maildir(self, user, name):
        src, dst = self.work / "mail" / user / "Maildir", self.work / "mail" / name
        shutil.rmtree(dst, ignore_errors=True)
        run(["cp", "-al", src, dst])
        for f in src.iterdir():  # Dovecot appends to its index files in place: real copies
            if f.is_file() and f.name.startswith("dovecot"):
                (dst / f.name).unlink()
                shutil.copy2(f, dst / f.name)
        run(["chown", "-R", f"{MAIL_OWNER}:", dst])

    def restore_maildir(self, user, name):
        dst = self.work / "mail" / user / "Maildir"
        shutil.rmtree(dst, ignore_errors=True)
        run(["cp", "-al", self.work / "mail" / name, dst])
        for f in dst.iterdir():
            if f.is_file() and f.name.startswith("dovecot"):
                f.unlink()
                shutil.copy2(self.work / "mail" / name / f.name, f)
        run(["chown", "-R", f"{MAIL_OWNER}:", dst])

    # ---------------------------------------------------------------- timing
    def timed(self, cmd, ns, env=None, cwd=None, label="", as_user=None):
        """Runs cmd in network namespace ns (through tools/rtime, a small launcher: peak RSS
        survives execve, so forking from Python would inflate it); wall, CPU and peak RSS of
        cmd and the children it waited for, plus Dovecot's CPU and the machine's load."""
        run(["sync"])  # the previous run's writeback must not land in this one
        logdir = self.work / "run" / "logs"
        logdir.mkdir(parents=True, exist_ok=True)
        rfile = logdir / f"{label}.rusage"
        rfile.unlink(missing_ok=True)
        full_env = dict(os.environ)
        full_env.update(env or {})
        launcher = [self.tools / "rtime", "--netns", f"/run/netns/{ns}", "--out", rfile]
        if as_user:
            launcher += ["--uid", run(["id", "-u", as_user]).stdout.strip(),
                         "--gid", run(["id", "-g", as_user]).stdout.strip()]
        on_link = ns == NS_CLI
        l0 = link_counters() if on_link else (0, 0)
        la0, (b0, t0j), s0 = loadavg(), cpu_jiffies(), children_cpu(self.dovecot_pid)
        with open(logdir / f"{label}.out", "w") as out_f, open(logdir / f"{label}.err", "w") as err_f:
            p = subprocess.run([str(c) for c in launcher + ["--"] + list(cmd)], stdout=out_f, stderr=err_f,
                               stdin=subprocess.DEVNULL, env=full_env, cwd=cwd)
        b1, t1j = cpu_jiffies()
        l1 = link_counters() if on_link else (0, 0)
        time.sleep(0.3)  # Dovecot's master reaps the session's pop3/login processes (their CPU)
        try:
            ru = json.loads(rfile.read_text())
        except (OSError, ValueError):
            ru = {"wall": 0.0, "user": 0.0, "sys": 0.0, "maxrss_kb": 0, "rc": p.returncode}
        return {"wall": ru["wall"], "cpu": ru["user"] + ru["sys"], "user": ru["user"], "sys": ru["sys"],
                "rss_mb": ru["maxrss_kb"] / 1024, "rc": p.returncode,
                "server_cpu": children_cpu(self.dovecot_pid) - s0,
                "machine_busy": (b1 - b0) / max(1, t1j - t0j), "load0": la0, "load1": loadavg(),
                "link_drops": l1[0] - l0[0], "link_retrans": l1[1] - l0[1],
                "stdout": (logdir / f"{label}.out").read_text()[-4000:],
                "stderr": (logdir / f"{label}.err").read_text()[-4000:]}

    # ---------------------------------------------------------------- clients
    def host_ns(self, link):
        return (("127.0.0.1", NS_SRV) if link == "loopback" else (ADDR_SRV, NS_CLI))

    def floor_cmd(self, user, host, mode, extra=()):
        return [self.tools / "pop3floor", "--host", host, "--port", PORT, "--user", user,
                "--pass", self.password(user), "--ca", self.work / "tls" / "ca.pem", "--mode", mode] + list(extra)

    def popvault_config(self, name, user, host, retention="keep"):
        d = self.work / "clients" / name
        d.mkdir(parents=True, exist_ok=True)
        pw = d / "password"
        pw.write_text(self.password(user) + "\n")
        os.chmod(pw, 0o600)
        (d / "popvault.ini").write_text(f"""[agent]
state_dir = {d}/state
log_level = {self.a.popvault_log_level}
log_file = {d}/popvault.log
plugin_dir = {self.popvault.parent.parent / 'lib' / 'popvault'}

[store.archive]
plugin = rocksdb
path = {d}/archive

[account.{user}]
host = {host}
port = {PORT}
tls = implicit
ca_file = {self.work / 'tls' / 'ca.pem'}
user = {user}
password_file = {pw}
stores = archive
retention = {retention}
""")
        return d

    def reset_dir(self, d):
        for sub in ("state", "archive", "Maildir", "out", "getmail"):
            shutil.rmtree(d / sub, ignore_errors=True)
        for f in ("uidls", "out.bsmtp", "fetchids", "popvault.log"):
            (d / f).unlink(missing_ok=True)

    def count_popvault(self, d):
        r = run([self.popvault, "list", "--config", d / "popvault.ini", "--json"], check=False)
        if r.returncode != 0:
            return -1
        out = r.stdout.strip()
        if out.startswith("["):
            return len(json.loads(out))
        return sum(1 for ln in out.splitlines() if ln.strip().startswith("{"))

    @staticmethod
    def count_maildir(m):
        return sum(len(os.listdir(m / s)) for s in ("new", "cur") if (m / s).is_dir())

    def client_run(self, client, user, link, n_expected, label):
        """One timed run of one client (a getmail6 run that hit its child-wait race is retried, twice at most)."""
        for attempt in range(3):
            r = self.client_run_once(client, user, link, n_expected, label + (f"-retry{attempt}" if attempt else ""))
            if r["ok"] or client != "getmail" or "waiting child pid" not in r["stderr"]:
                break
            note = f"{label}: getmail6 hit its child-wait race (attempt {attempt + 1}); retried"
            log(note)
            self.results["notes"].append(note)
        if not r["ok"]:
            msg = f"{label}: exit {r['rc']}, {r['count']} of {n_expected} messages; stderr: {r['stderr'][-600:]}"
            log("FAILED " + msg)
            self.results["failures"].append(msg)
        return r

    def client_run_once(self, client, user, link, n_expected, label):
        """One timed run of one client: reset its state, run, check it got every message."""
        host, ns = self.host_ns(link)
        d = self.work / "clients" / f"{client}-{user}-{link}"
        d.mkdir(parents=True, exist_ok=True)
        self.reset_dir(d)
        env, count = {}, None
        if client == "floor":
            r = self.timed(self.floor_cmd(user, host, "retr", ["--window", "256"]), ns, label=label)
            if r["rc"] == 0:
                count = json.loads(r["stdout"].strip().splitlines()[-1])["messages"]
        elif client == "popvault":
            self.popvault_config(f"popvault-{user}-{link}", user, host)
            r = self.timed([self.popvault, "sync", "--config", d / "popvault.ini"], ns, label=label)
            count = self.count_popvault(d)
        elif client == "mpop":
            (d / "Maildir").mkdir()
            for s in ("new", "cur", "tmp"):
                (d / "Maildir" / s).mkdir()
            rc = d / "mpoprc"
            rc.write_text(f"""defaults
tls on
tls_starttls off
tls_trust_file {self.work / 'tls' / 'ca.pem'}
keep on
only_new on
account bench
host {host}
port {PORT}
user {user}
password {self.password(user)}
uidls_file {d}/uidls
delivery maildir {d}/Maildir
""")
            os.chmod(rc, 0o600)
            r = self.timed(["mpop", "-C", rc, "-q", "bench"], ns, label=label)
            count = self.count_maildir(d / "Maildir")
        elif client == "fetchmail":
            rc = d / "fetchmailrc"
            rc.write_text(f"""set no syslog
poll {host} with proto POP3 port {PORT} timeout 300
  user "{user}" there with password "{self.password(user)}" is "root" here
  keep
  ssl sslcertck sslcertfile "{self.work / 'tls' / 'ca.pem'}" sslcommonname "localhost"
  bsmtp "{d}/out.bsmtp"
""")
            os.chmod(rc, 0o600)
            env = {"HOME": str(d), "FETCHMAILHOME": str(d)}
            r = self.timed(["fetchmail", "-f", rc, "-i", d / "fetchids", "--nodetach", "--nosyslog", "-s",
                            "--pidfile", d / "fetchmail.pid"], ns, env=env, label=label)
            if (d / "out.bsmtp").exists():
                with open(d / "out.bsmtp", "rb") as f:
                    count = sum(1 for ln in f if ln.startswith(b"MAIL FROM:"))
            else:
                count = 0
        elif client == "getmail":
            (d / "getmail").mkdir()
            for s in ("new", "cur", "tmp"):
                (d / "Maildir" / s).mkdir(parents=True, exist_ok=True)
            rc = d / "getmail" / "getmailrc"
            rc.write_text(f"""[retriever]
type = SimplePOP3SSLRetriever
server = {host}
port = {PORT}
username = {user}
password = {self.password(user)}
ca_certs = {self.work / 'tls' / 'ca.pem'}
# getmail6 waits for its per-message delivery child on a Condition it can miss (the SIGCHLD
# handler may notify before the wait starts: getmailcore/baseclasses.py _wait_for_child);
# the wait then lasts this timeout (default 180 s) and the run fails. Keep that short; such
# runs are retried (see client_run).
timeout = 15

[destination]
type = Maildir
path = {d}/Maildir/

[options]
verbose = 0
read_all = false
delete = false
message_log_syslog = false
""")
            # getmail6 refuses to deliver as root: it runs as an ordinary user, as it would be.
            run(["chown", "-R", f"{MAIL_OWNER}:", d / "getmail", d / "Maildir"])
            r = self.timed(["getmail", f"--getmaildir={d / 'getmail'}", f"--rcfile={rc}"], ns, label=label,
                           env={"HOME": str(d / "getmail")}, as_user=MAIL_OWNER)
            count = self.count_maildir(d / "Maildir")
        else:
            raise ValueError(client)
        r["count"] = count
        r["ok"] = r["rc"] == 0 and count == n_expected
        return r

    # ---------------------------------------------------------------- sections
    def summarize(self, runs, n, wire):
        ok = [r for r in runs if r["ok"]]
        if not ok:
            return {"ok": False, "runs": len(runs)}
        med = lambda k: statistics.median(r[k] for r in ok)  # noqa: E731
        wall = med("wall")
        return {"ok": len(ok) == len(runs), "runs": len(runs), "wall": wall, "cpu": med("cpu"), "user": med("user"),
                "sys": med("sys"), "rss_mb": max(r["rss_mb"] for r in ok), "server_cpu": med("server_cpu"),
                "msg_s": n / wall, "mb_s": wire / MB / wall, "walls": [round(r["wall"], 3) for r in runs],
                "load": [round(r["load0"], 2) for r in runs], "busy": med("machine_busy"),
                "link_drops": sum(r.get("link_drops", 0) for r in runs),
                "link_retrans": sum(r.get("link_retrans", 0) for r in runs)}

    def archive_section(self, link, n, wire):
        clients = ["floor", "popvault", "mpop", "fetchmail", "getmail"]
        if self.a.clients:
            clients = [c for c in clients if c in self.a.clients.split(",")]
        # getmail6 takes minutes per run (and fetchmail at 20 ms): --slow-runs of them (default 1).
        slow = {"fetchmail", "getmail"} if link == "rtt20" else {"getmail"}
        per = {c: [] for c in clients}
        for rnd in range(self.runs):
            for c in clients:
                if c in slow and rnd >= self.slow_runs:
                    continue
                log(f"archive {link} round {rnd + 1}/{self.runs}: {c}")
                r = self.client_run(c, "bench", link, n, f"archive-{link}-{c}-{rnd}")
                r["round"] = rnd
                per[c].append(r)
                log(f"  {c}: {r['wall']:.2f} s wall, {r['cpu']:.2f} s CPU, {r['rss_mb']:.0f} MB RSS, load {r['load0']:.1f}"
                    + (f", link drops {r['link_drops']}, retransmits {r['link_retrans']}" if link == "rtt20" else ""))
        sec = {"link": link, "messages": n, "wire_bytes": wire, "clients": {}}
        for c in clients:
            sec["clients"][c] = s = self.summarize(per[c], n, wire)
            # Ratios popvault/peer: median over rounds of the same-round ratio.
            if c != "popvault" and "popvault" in per and s.get("wall"):
                pv = {r["round"]: r for r in per["popvault"] if r["ok"]}
                pairs = [(pv[r["round"]], r) for r in per[c] if r["ok"] and r["round"] in pv]
                if pairs:
                    s["ratio_wall"] = statistics.median(p["wall"] / q["wall"] for p, q in pairs)
                    s["ratio_cpu"] = statistics.median(p["cpu"] / max(q["cpu"], 1e-3) for p, q in pairs)
                    s["ratio_rss"] = statistics.median(p["rss_mb"] / max(q["rss_mb"], 1e-3) for p, q in pairs)
        sec["runs_raw"] = {c: [{k: v for k, v in r.items() if k not in ("stdout", "stderr")} for r in per[c]]
                           for c in clients}
        self.results["sections"][f"archive-{link}"] = sec

    def poll_section(self, poll_src, n):
        """No-new-mail poll: popvault sync over an archived mailbox vs bare UIDL (and LIST)."""
        user = "poll"
        host, ns = self.host_ns("loopback")
        d = self.popvault_config(f"popvault-{user}-loopback", user, host)
        self.reset_dir(d)
        log(f"poll: initial archive of {n} messages (popvault, timed once)")
        first = self.timed([self.popvault, "sync", "--config", d / "popvault.ini"], ns, label="poll-initial")
        first["count"] = self.count_popvault(d)
        if first["rc"] != 0 or first["count"] != n:
            self.results["failures"].append(f"poll initial archive: exit {first['rc']}, {first['count']} of {n}; "
                                            f"{first['stderr'][-600:]}")
        per = {"popvault": [], "uidl": [], "list": []}
        for rnd in range(self.runs):
            for c in per:
                if c == "popvault":
                    r = self.timed([self.popvault, "sync", "--config", d / "popvault.ini"], ns, label=f"poll-pv-{rnd}")
                    r["ok"] = r["rc"] == 0
                else:
                    r = self.timed(self.floor_cmd(user, host, c), ns, label=f"poll-{c}-{rnd}")
                    r["ok"] = r["rc"] == 0 and json.loads(r["stdout"].splitlines()[-1])["messages"] == n
                if not r["ok"]:
                    self.results["failures"].append(f"poll {c} round {rnd}: exit {r['rc']}: {r['stderr'][-600:]}")
                r["round"] = rnd
                per[c].append(r)
                log(f"  poll {c}: {r['wall']:.3f} s")
        first.pop("stdout", None)
        first.pop("stderr", None)
        sec = {"messages": n, "initial": first, "clients": {c: self.summarize(per[c], n, 0) for c in per}}
        pv = {r["round"]: r for r in per["popvault"] if r["ok"]}
        for c in ("uidl", "list"):
            pairs = [(pv[r["round"]], r) for r in per[c] if r["ok"] and r["round"] in pv]
            if pairs:
                sec["clients"][c]["ratio_wall"] = statistics.median(p["wall"] / q["wall"] for p, q in pairs)
        self.results["sections"]["poll"] = sec

    def delete_setup(self, n):
        """Archives the 'del' mailbox once (retention keep, untimed) and keeps that state as
        clients/del-pristine; each delete run starts from a copy. Once per bench run: the
        mailbox's UIDVALIDITY (part of Dovecot's UIDLs) changes whenever it is re-created."""
        if getattr(self, "_del_pristine", None):
            return self._del_pristine
        user = "del"
        host, ns = self.host_ns("loopback")
        keep = self.popvault_config(f"popvault-{user}-keep", user, host)
        self.reset_dir(keep)
        log(f"delete: archiving {n} messages of '{user}' (retention keep, untimed)")
        r = self.timed([self.popvault, "sync", "--config", keep / "popvault.ini"], ns, label="delete-setup")
        if r["rc"] != 0:
            self.results["failures"].append(f"delete setup: exit {r['rc']}: {r['stderr'][-600:]}")
            return None
        pristine = self.work / "clients" / "del-pristine"
        shutil.rmtree(pristine, ignore_errors=True)
        pristine.mkdir(parents=True)
        for sub in ("state", "archive"):
            run(["cp", "-a", keep / sub, pristine / sub])
        self._del_pristine = pristine
        return pristine

    def delete_section(self, n, wire):
        """Verified delete: archived (keep) once, then each round restores the mailbox and the
        archive and times popvault sync with retention = delete_after_archive."""
        user = "del"
        host, ns = self.host_ns("loopback")
        pristine = self.delete_setup(n)
        if pristine is None:
            return
        per = {"popvault": [], "floor-retr": [], "floor-dele": []}
        for rnd in range(self.runs):
            for c in per:
                self.restore_maildir(user, "del-pristine-maildir")
                if c == "popvault":
                    d = self.popvault_config(f"popvault-{user}-delete", user, host, retention="delete_after_archive")
                    self.reset_dir(d)
                    for sub in ("state", "archive"):
                        run(["cp", "-a", pristine / sub, d / sub])
                    r = self.timed([self.popvault, "sync", "--config", d / "popvault.ini"], ns, label=f"delete-pv-{rnd}")
                elif c == "floor-retr":
                    r = self.timed(self.floor_cmd(user, host, "retr"), ns, label=f"delete-floor-retr-{rnd}")
                else:
                    r = self.timed(self.floor_cmd(user, host, "dele"), ns, label=f"delete-floor-dele-{rnd}")
                left = self.count_maildir(self.work / "mail" / user / "Maildir")
                r["left_on_server"] = left
                r["ok"] = r["rc"] == 0 and left == (n if c == "floor-retr" else 0)
                if not r["ok"]:
                    self.results["failures"].append(f"delete {c} round {rnd}: exit {r['rc']}, {left} left on server: "
                                                    f"{r['stderr'][-600:]}")
                r["round"] = rnd
                per[c].append(r)
                log(f"  delete {c}: {r['wall']:.2f} s, {left} left on the server")
        self.restore_maildir(user, "del-pristine-maildir")
        sec = {"messages": n, "wire_bytes": wire, "clients": {c: self.summarize(per[c], n, wire) for c in per}}
        pv = {r["round"]: r for r in per["popvault"] if r["ok"]}
        for c in ("floor-retr", "floor-dele"):
            pairs = [(pv[r["round"]], r) for r in per[c] if r["ok"] and r["round"] in pv]
            if pairs:
                sec["clients"][c]["ratio_wall"] = statistics.median(p["wall"] / q["wall"] for p, q in pairs)
        self.results["sections"]["delete"] = sec

    def huge_section(self, size):
        user = "huge"
        host, ns = self.host_ns("loopback")
        per = {"popvault": [], "floor": []}
        for rnd in range(self.runs):
            for c in per:
                log(f"huge message round {rnd + 1}: {c}")
                r = self.client_run(c, user, "loopback", 1, f"huge-{c}-{rnd}")
                r["round"] = rnd
                per[c].append(r)
                log(f"  {c}: {r['wall']:.2f} s, {r['rss_mb']:.1f} MB RSS")
        sec = {"size": size, "clients": {c: self.summarize(per[c], 1, size) for c in per}}
        self.results["sections"]["huge"] = sec

    # ---------------------------------------------------------------- profile
    def profiled(self, tool, name, ini, ns, prep=None):
        """popvault sync under perf (cpu-clock samples), strace -c -w (time in syscalls) or
        callgrind; returns the report text."""
        out = self.work / "profile" / name
        if prep:
            prep()
        if tool == "perf":
            data = out.with_suffix(".perf.data")
            r = self.timed(["perf", "record", "-q", "-e", "cpu-clock", "-F", "2999", "-o", data, "--",
                            self.popvault, "sync", "--config", ini], ns, label=f"profile-{name}-perf")
            rep = run(["perf", "report", "-i", data, "--stdio", "--no-children", "--sort", "dso,sym",
                       "--percent-limit", "0.8"], check=False).stdout
            dso = run(["perf", "report", "-i", data, "--stdio", "--no-children", "--sort", "dso",
                       "--percent-limit", "0.5"], check=False).stdout
            text = "\n".join(ln for ln in (dso + rep).splitlines() if ln.strip() and not ln.startswith("#"))
        elif tool == "strace-main":
            # Main thread only (no -f): where its wall time goes while it does not compute.
            f = out.with_suffix(".strace-main.txt")
            r = self.timed(["strace", "-T", "-o", f, self.popvault, "sync", "--config", ini], ns,
                           label=f"profile-{name}-strace-main")
            text = summarize_strace_t(f, r["wall"])
        elif tool == "massif":
            f = out.with_suffix(".massif.out")
            r = self.timed(["valgrind", "--tool=massif", f"--massif-out-file={f}", "--threshold=2.0",
                            self.popvault, "sync", "--config", ini], ns, label=f"profile-{name}-massif")
            ms = run(["ms_print", "--threshold=2.0", f], check=False).stdout
            text = massif_peak(ms)
        elif tool == "strace":
            f = out.with_suffix(".strace.txt")
            r = self.timed(["strace", "-f", "-c", "-w", "-o", f, self.popvault, "sync", "--config", ini], ns,
                           label=f"profile-{name}-strace")
            text = f.read_text() if f.exists() else ""
        else:
            f = out.with_suffix(".callgrind.out")
            r = self.timed(["valgrind", "--tool=callgrind", f"--callgrind-out-file={f}", self.popvault, "sync",
                            "--config", ini], ns, label=f"profile-{name}-callgrind")
            self_ = run(["callgrind_annotate", "--inclusive=no", f], check=False).stdout
            incl = run(["callgrind_annotate", "--inclusive=yes", f], check=False).stdout
            keep = lambda t, n: "\n".join(t.splitlines()[:n])  # noqa: E731
            text = "SELF (exclusive Ir)\n" + keep(self_, 45) + "\n\nINCLUSIVE\n" + keep(incl, 60)
        head = (f"== {name} [{tool}]: exit {r['rc']}, {r['wall']:.2f} s wall, {r['cpu']:.2f} s CPU "
                f"({r['user']:.2f} user + {r['sys']:.2f} sys), {r['rss_mb']:.1f} MB peak RSS\n")
        out.with_suffix(f".{tool}.report.txt").write_text(head + text)
        log(head.strip())
        return head + text

    def profile_section(self, n, prof_n):
        """perf + strace on the full-size runs, callgrind on small ones (it is ~50x slower)."""
        (self.work / "profile").mkdir(exist_ok=True)
        host, ns = self.host_ns("loopback")
        reports = []

        def fresh(name, user, retention="keep"):
            d = self.popvault_config(name, user, host, retention)
            self.reset_dir(d)
            return d

        # Full archive (5000 messages) and the small one for callgrind.
        for tool in ("perf", "strace", "strace-main"):
            d = fresh("prof-archive", "bench")
            reports.append(self.profiled(tool, f"archive-{n}", d / "popvault.ini", ns))
        for tool in ("callgrind", "massif"):
            d = fresh("prof-archive-small", "prof")
            reports.append(self.profiled(tool, f"archive-{prof_n}", d / "popvault.ini", ns))
        # No-new-mail poll: the 'poll' user's archive from the poll section if present.
        # (re-archived first: an archive from another bench run has other UIDLs)
        pd = fresh("prof-poll", "poll")
        log(f"profile: archiving the {self.n_poll}-message poll mailbox first (untimed)")
        run(in_ns(ns, [self.popvault, "sync", "--config", pd / "popvault.ini"]))
        for tool in ("perf", "strace", "callgrind", "massif"):
            reports.append(self.profiled(tool, f"poll-{self.n_poll}", pd / "popvault.ini", ns))
        # Verified delete of the 5000 (restored before each run, like the delete section).
        pristine = self.delete_setup(n)
        if pristine is not None:
            d = self.popvault_config("prof-delete", "del", host, "delete_after_archive")

            def prep():
                self.restore_maildir("del", "del-pristine-maildir")
                self.reset_dir(d)
                for sub in ("state", "archive"):
                    run(["cp", "-a", pristine / sub, d / sub])
            for tool in ("perf", "strace", "strace-main"):
                reports.append(self.profiled(tool, f"delete-{n}", d / "popvault.ini", ns, prep))
            self.restore_maildir("del", "del-pristine-maildir")
        else:
            reports.append("(delete: setting up the archived 'del' mailbox failed)")
        d = fresh("prof-huge", "huge")
        reports.append(self.profiled("perf", "huge", d / "popvault.ini", ns))
        text = "\n\n".join(reports)
        (self.work / "profile" / "summary.txt").write_text(text)
        print(text)

    # ---------------------------------------------------------------- main
    def versions(self):
        v = {}
        for name, cmd in (("dovecot", ["dovecot", "--version"]), ("mpop", ["mpop", "--version"]),
                          ("fetchmail", ["fetchmail", "-V"]), ("getmail6", ["getmail", "--version"]),
                          ("openssl", ["openssl", "version"])):
            r = run(cmd, check=False)
            lines = [ln for ln in (r.stdout + r.stderr).splitlines() if ln.strip() and "WARNING" not in ln]
            v[name] = lines[0].strip() if lines else "?"
        g = run(["git", "-C", REPO, "log", "-1", "--format=%h %cs %s"], check=False).stdout.strip()
        dirty = run(["git", "-C", REPO, "status", "--porcelain", "--untracked-files=no"], check=False).stdout.strip()
        v["popvault"] = g[:80] + (" (working tree has uncommitted changes)" if dirty else "")
        v["kernel"] = platform.release()
        v["cpus"] = os.cpu_count()
        v["cpu_model"] = next((ln.split(":", 1)[1].strip() for ln in Path("/proc/cpuinfo").read_text().splitlines()
                               if ln.startswith("model name")), "?")
        return v

    def main(self):
        for sub in ("run", "mail", "clients", "results", "data"):
            (self.work / sub).mkdir(parents=True, exist_ok=True)
        os.chmod(self.work, 0o755)
        t_start = time.monotonic()
        self.results["mode"] = "smoke" if self.smoke else "full"
        self.results["started"] = time.strftime("%Y-%m-%d %H:%M:%S %Z")
        self.results["versions"] = self.versions()
        self.results["load_start"] = Path("/proc/loadavg").read_text().strip()
        arch, arch_st = self.data_dir("archive", count=self.n_archive, total=self.bytes_archive)
        poll, poll_st = self.data_dir("poll", count=self.n_poll)
        huge, huge_st = self.data_dir("huge", size=self.huge_size)
        self.results["mailboxes"] = {"archive": arch_st, "poll": poll_st, "huge": huge_st}
        self.users = ["bench", "del", "poll", "huge"]
        if self.a.profile:
            prof, prof_st = self.data_dir("archive", count=self.a.profile_count, total=self.a.profile_count * 42_000)
            self.users.append("prof")
        self.make_tls()
        self.mailbox("bench", arch / "Maildir")
        self.mailbox("del", arch / "Maildir")
        self.mailbox("poll", poll / "Maildir")
        self.mailbox("huge", huge / "Maildir")
        if self.a.profile:
            self.mailbox("prof", prof / "Maildir")
        self.setup_netns()
        self.start_dovecot()
        # Pre-warm: Dovecot indexes a Maildir at its first login; no client should pay for that.
        for u in self.users:
            r = run(in_ns(NS_SRV, self.floor_cmd(u, "127.0.0.1", "uidl")))
            log(f"pre-warm {u}: {json.loads(r.stdout)['messages']} messages")
        self.snapshot_maildir("del", "del-pristine-maildir")
        # One warm-up fetch so the page cache holds the mailbox for every client alike.
        run(in_ns(NS_SRV, self.floor_cmd("bench", "127.0.0.1", "retr")))
        n, wire = arch_st["messages"], arch_st["wire_bytes"]
        sections = self.a.only.split(",") if self.a.only else ["archive", "poll", "delete", "huge"]
        if "archive" in sections:
            for link in self.links:
                self.archive_section(link, n, wire)
        if "poll" in sections:
            self.poll_section(poll, poll_st["messages"])
        if "delete" in sections:
            self.delete_section(n, wire)
        if "huge" in sections:
            self.huge_section(huge_st["wire_bytes"])
        if self.a.profile:
            self.profile_section(n, prof_st["messages"])
        if self.a.hold:
            log(f"--hold: Dovecot and the namespaces stay up until SIGTERM/SIGINT (pid {os.getpid()})")
            try:
                signal.pause()
            except (KeyboardInterrupt, SystemExit):
                pass
        self.results["load_end"] = Path("/proc/loadavg").read_text().strip()
        self.results["elapsed_s"] = time.monotonic() - t_start
        try:
            dl = (self.work / "run" / "delaylink.log").read_text().strip()
        except OSError:
            dl = ""
        self.results["delaylink"] = dl
        stamp = time.strftime("%Y%m%d-%H%M%S")
        md = render(self.results)
        (self.work / "results" / f"{stamp}-{self.results['mode']}.json").write_text(json.dumps(self.results, indent=1))
        (self.work / "results" / f"{stamp}-{self.results['mode']}.md").write_text(md)
        print(md)
        log(f"results: {self.work / 'results'}/{stamp}-{self.results['mode']}.{{md,json}}")
        return 1 if self.results["failures"] else 0

    def close(self):
        self.stop_dovecot()
        if self.delaylink and self.delaylink.poll() is None:
            self.delaylink.terminate()
            try:
                self.delaylink.wait(5)
            except subprocess.TimeoutExpired:
                self.delaylink.kill()
        self.cleanup_netns()


# -------------------------------------------------------------------- report
def massif_peak(ms):
    """ms_print's graph plus the allocation tree of the peak snapshot."""
    import re
    m = re.search(r"Detailed snapshots: \[([^\]]*)\]", ms)
    peak = None
    if m:
        for item in m.group(1).split(","):
            if "peak" in item:
                peak = item.split()[0]
    graph = ms.split("Number of snapshots")[0]
    if peak is None:
        return graph
    rows = ms.splitlines()
    for i, ln in enumerate(rows):
        if re.match(rf"\s+{peak}\s+[\d,]+\s+[\d,]+", ln):
            return graph + "\nPEAK SNAPSHOT\n" + "\n".join(rows[i - 3:i + 60])
    return graph


def summarize_strace_t(path, wall):
    """Per-syscall totals of `strace -T` output (one thread): time blocked, calls."""
    import re
    tot, calls = {}, {}
    try:
        lines = Path(path).read_text().splitlines()
    except OSError:
        return ""
    for ln in lines:
        m = re.match(r"(\w+)\(.*<([\d.]+)>$", ln)
        if m:
            tot[m.group(1)] = tot.get(m.group(1), 0.0) + float(m.group(2))
            calls[m.group(1)] = calls.get(m.group(1), 0) + 1
    out = [f"main thread: {sum(tot.values()):.3f} s in syscalls of {wall:.3f} s wall (strace inflates both)",
           "   seconds  calls  syscall"]
    for k, v in sorted(tot.items(), key=lambda kv: -kv[1])[:14]:
        out.append(f"  {v:8.3f} {calls[k]:6d}  {k}")
    return "\n".join(out)


def fmt(x, digits=2):
    return "–" if x is None else f"{x:.{digits}f}"


def render(res):
    out = []
    v = res["versions"]
    out.append(f"## popvault bench ({res['mode']}), {res['started']}\n")
    out.append(f"Machine: {v['cpus']} × {v['cpu_model']}, Linux {v['kernel']}; load average at start "
               f"{res['load_start'].split()[0:3]}, at end {res.get('load_end', '?').split()[0:3]}; "
               f"total bench time {res.get('elapsed_s', 0) / 60:.1f} min.  ")
    out.append(f"popvault {v['popvault']}; {v['dovecot'] and 'Dovecot ' + v['dovecot']}; {v['mpop']}; "
               f"{v['fetchmail']}; {v['getmail6']}; {v['openssl']}.\n")
    mb = res.get("mailboxes", {})
    if "archive" in mb:
        a = mb["archive"]
        out.append(f"Mailbox: {a['messages']} messages, {a['wire_bytes'] / MB:.1f} MB as sent, median "
                   f"{a['median_wire'] / 1000:.1f} KB, {a['between_100k_2m']} between 100 KB and 2 MB "
                   f"(seed {a['seed']}).\n")
    names = {"floor": "raw floor (256 pipelined RETR, discard)", "popvault": "**popvault** sync → RocksDB",
             "mpop": "mpop → Maildir", "fetchmail": "fetchmail → bsmtp file", "getmail": "getmail6 → Maildir"}
    for link, title in (("loopback", "Full archive, loopback TLS 1.3"), ("rtt20", "Full archive, 20 ms RTT link (TLS 1.3)")):
        sec = res["sections"].get(f"archive-{link}")
        if not sec:
            continue
        out.append(f"### {title}\n")
        out.append("| client | runs | wall s (median) | CPU s user+sys | peak RSS MB | msg/s | MB/s | "
                   "popvault/peer wall | popvault/peer CPU | Dovecot CPU s | walls |")
        out.append("|---|---|---|---|---|---|---|---|---|---|---|")
        for c, s in sec["clients"].items():
            if not s.get("wall"):
                out.append(f"| {names[c]} | {s['runs']} | FAILED | | | | | | | | |")
                continue
            out.append(f"| {names[c]} | {s['runs']}{'' if s['ok'] else ' (some failed)'} | {fmt(s['wall'])} | "
                       f"{fmt(s['cpu'])} ({fmt(s['user'])}+{fmt(s['sys'])}) | {fmt(s['rss_mb'], 1)} | "
                       f"{fmt(s['msg_s'], 0)} | {fmt(s['mb_s'], 1)} | "
                       f"{fmt(s.get('ratio_wall')) + '×' if s.get('ratio_wall') else '–'} | "
                       f"{fmt(s.get('ratio_cpu')) + '×' if s.get('ratio_cpu') else '–'} | {fmt(s['server_cpu'])} | "
                       f"{s['walls']} |")
        if link == "rtt20":
            lost = ", ".join(f"{c} {s.get('link_drops', 0)}/{s.get('link_retrans', 0)}"
                             for c, s in sec["clients"].items() if s.get("wall"))
            out.append(f"\nPackets the link dropped / TCP segments sent again, all runs: {lost}.")
        out.append("")
    sec = res["sections"].get("poll")
    if sec:
        out.append(f"### No-new-mail poll, {sec['messages']} messages (loopback)\n")
        ini = sec["initial"]
        out.append(f"Initial archive of the {sec['messages']} messages by popvault (once): {ini['wall']:.2f} s wall, "
                   f"{ini['cpu']:.2f} s CPU, {ini['rss_mb']:.1f} MB peak RSS.\n")
        out.append("| client | runs | wall s (median) | CPU s | peak RSS MB | popvault/this | walls |")
        out.append("|---|---|---|---|---|---|---|")
        pn = {"popvault": "**popvault** sync (nothing new)", "uidl": "bare UIDL listing (floor client)",
              "list": "bare LIST listing (floor client)"}
        for c, s in sec["clients"].items():
            if not s.get("wall"):
                out.append(f"| {pn[c]} | {s['runs']} | FAILED | | | | |")
                continue
            out.append(f"| {pn[c]} | {s['runs']} | {fmt(s['wall'], 3)} | {fmt(s['cpu'], 3)} | {fmt(s['rss_mb'], 1)} | "
                       f"{fmt(s.get('ratio_wall')) + '×' if s.get('ratio_wall') else '–'} | {s['walls']} |")
        out.append("")
    sec = res["sections"].get("delete")
    if sec:
        out.append(f"### Verified delete pass, {sec['messages']} archived messages (loopback)\n")
        out.append("| client | runs | wall s (median) | CPU s | peak RSS MB | msg/s | popvault/this | walls |")
        out.append("|---|---|---|---|---|---|---|---|")
        dn = {"popvault": "**popvault** sync, delete_after_archive (read back + SHA-256 + pipelined DELE + QUIT)",
              "floor-retr": "raw floor: 256 pipelined RETR of the same mailbox", "floor-dele": "raw floor: 256 pipelined DELE + QUIT"}
        for c, s in sec["clients"].items():
            if not s.get("wall"):
                out.append(f"| {dn[c]} | {s['runs']} | FAILED | | | | | |")
                continue
            out.append(f"| {dn[c]} | {s['runs']} | {fmt(s['wall'])} | {fmt(s['cpu'])} | {fmt(s['rss_mb'], 1)} | "
                       f"{fmt(s['msg_s'], 0)} | {fmt(s.get('ratio_wall')) + '×' if s.get('ratio_wall') else '–'} | "
                       f"{s['walls']} |")
        out.append("")
    sec = res["sections"].get("huge")
    if sec:
        out.append(f"### One {sec['size'] / MB:.0f} MB message (loopback)\n")
        out.append("| client | runs | wall s (median) | CPU s | peak RSS MB | MB/s |")
        out.append("|---|---|---|---|---|---|")
        for c, s in sec["clients"].items():
            if not s.get("wall"):
                out.append(f"| {names[c]} | {s['runs']} | FAILED | | | |")
                continue
            out.append(f"| {names[c]} | {s['runs']} | {fmt(s['wall'])} | {fmt(s['cpu'])} | {fmt(s['rss_mb'], 1)} | "
                       f"{fmt(s['mb_s'], 1)} |")
        out.append("")
    out.append("### Targets (issue #6)\n")
    out.append("| target | measured | verdict |")
    out.append("|---|---|---|")
    for name, value, limit in targets(res):
        verdict = "–" if value is None else ("met" if value <= limit else "**missed**")
        out.append(f"| {name} | {fmt(value)}{'' if value is None else ('' if 'RSS' in name else '×')} | {verdict} |")
    out.append("")
    if res.get("notes"):
        out.append("### Notes\n")
        out += [f"- {n}" for n in res["notes"]]
        out.append("")
    if res["failures"]:
        out.append("### Failures\n")
        out += [f"- {f}" for f in res["failures"]]
        out.append("")
    return "\n".join(out)


def targets(res):
    s = res["sections"]
    t = []

    def get(sec, client, key):
        return s.get(sec, {}).get("clients", {}).get(client, {}).get(key)

    pv_l, fl_l = get("archive-loopback", "popvault", "wall"), get("archive-loopback", "floor", "wall")
    t.append(("loopback: popvault ≤ 1.5× raw floor (wall)", get("archive-loopback", "floor", "ratio_wall"), 1.5))
    t.append(("loopback: popvault ≤ 0.5× mpop (wall)", get("archive-loopback", "mpop", "ratio_wall"), 0.5))
    t.append(("20 ms RTT: popvault ≤ 1.2× raw floor (wall)", get("archive-rtt20", "floor", "ratio_wall"), 1.2))
    rss = [get(sec, "popvault", "rss_mb") for sec in ("archive-loopback", "archive-rtt20", "huge")]
    rss = [r for r in rss if r is not None]
    t.append(("popvault peak RSS ≤ 64 MB: 5000-message archive, 200 MB message (MB, worst)", max(rss) if rss else None, 64))
    poll = s.get("poll", {})
    rss = [x for x in (poll.get("initial", {}).get("rss_mb"), get("poll", "popvault", "rss_mb")) if x is not None]
    t.append((f"popvault peak RSS ≤ 64 MB: {poll.get('messages', '?')}-message mailbox, first archive or poll (MB, worst)",
              max(rss) if rss else None, 64))
    t.append(("poll: popvault ≤ 2× bare UIDL (wall)", get("poll", "uidl", "ratio_wall"), 2.0))
    t.append(("verified delete ≤ 2× raw floor (RETR of the mailbox)", get("delete", "floor-retr", "ratio_wall"), 2.0))
    del pv_l, fl_l
    return t


def main():
    ap = argparse.ArgumentParser(description="popvault benchmark (issue #6)")
    ap.add_argument("--smoke", action="store_true", help="small mailbox, 1 run, loopback only (~1 min)")
    ap.add_argument("--work", default=str(REPO / "build" / "bench-work"))
    ap.add_argument("--popvault", required=True)
    ap.add_argument("--tools", required=True, help="directory with pop3floor and delaylink")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--slow-runs", type=int, default=1,
                    help="runs of getmail6 (both links) and fetchmail (20 ms link); the others get --runs")
    ap.add_argument("--count", type=int, help="messages in the archive mailbox (default 5000; smoke 300)")
    ap.add_argument("--seed", type=int, default=6)
    ap.add_argument("--rtt-ms", type=float, default=20.0)
    ap.add_argument("--mtu", type=int, default=1500)
    ap.add_argument("--loopback-only", action="store_true")
    ap.add_argument("--only", help="comma list of sections: archive,poll,delete,huge")
    ap.add_argument("--clients", help="comma list for the archive sections: floor,popvault,mpop,fetchmail,getmail")
    ap.add_argument("--popvault-log-level", default="information")
    ap.add_argument("--profile", action="store_true",
                    help="after the sections (--only), profile popvault: perf cpu-clock + strace -c on the "
                         "full-size archive/poll/delete/huge runs, callgrind on a small archive and the poll")
    ap.add_argument("--hold", action="store_true",
                    help="after the sections, keep Dovecot and the namespaces up until SIGTERM/SIGINT "
                         "(to run clients by hand: nsenter --net=/run/netns/pvbench-srv ...)")
    ap.add_argument("--profile-count", type=int, default=300, help="messages of the callgrind archive run")
    a = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("bench.py: needs root (network namespaces, Dovecot)")
    b = Bench(a)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        rc = b.main()
    finally:
        b.close()
    sys.exit(rc)


if __name__ == "__main__":
    main()
