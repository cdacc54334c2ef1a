#!/usr/bin/env python3
"""Checks that docker/compose.yaml and scripts/cluster.sh describe the same
Tocsin topology, so that what is tested locally (cluster.sh, chaos.sh, the
benchmarks) is what is deployed — and likewise compose's `ha` profile and
scripts/ha-cluster.sh (failover.sh):

  - the same services: PostgreSQL, `tocsin migrate` once (a one-shot that the
    others wait for), `tocsin serve` and `tocsin worker` with the same number
    of replicas, and nginx in front of every `serve` instance (the upstream
    of docker/nginx.conf);
  - the same Tocsin environment variable names for each command, every one of
    them a variable Tocsin knows (Configuration.variables);
  - for the `ha` profile (the services whose `profiles` list `ha`; the
    default topology is the services without `profiles`): etcd, three
    Patroni nodes (docker/patroni.Dockerfile) instead of PostgreSQL, a
    DATABASE_URL naming every Patroni node with
    target_session_attrs=read-write, and nginx.conf's upstream names as the
    `serve` services' aliases on nginx's network. DATABASE_READ_URL, which
    only a later Tocsin reads, is accepted there while Configuration.swift
    does not list it (the summary says so).

    scripts/check_topology.py [--root DIR] [--profile default|ha]

Exits 0 and prints one summary line per topology when they agree; otherwise
prints one line per mismatch and exits 1. Standard library only: compose.yaml is read
with the small YAML-subset reader below (block mappings and lists, quoted and
plain scalars, [flow] lists, {} , &anchors, *aliases and <<: merges); it
stops with a clear message on anything else.
"""
import argparse
import os
import re
import subprocess
import sys


class YamlSubsetError(Exception):
    pass


# ---- A reader for the YAML subset compose.yaml uses --------------------------

class _Line:
    __slots__ = ("number", "indent", "text")

    def __init__(self, number, indent, text):
        self.number, self.indent, self.text = number, indent, text


def _strip_comment(text):
    """Removes a `# comment` that is outside quotes and starts the line or
    follows whitespace."""
    quote = None
    for i, c in enumerate(text):
        if quote:
            if c == quote:
                if quote == "'" and i + 1 < len(text) and text[i + 1] == "'":
                    continue
                quote = None
            elif c == "\\" and quote == '"':
                continue
        elif c in "\"'" and (i == 0 or text[i - 1] in " \t[{,:-"):
            quote = c
        elif c == "#" and (i == 0 or text[i - 1] in " \t"):
            return text[:i].rstrip()
    return text.rstrip()


def _split_key(text):
    """Splits `key: rest` at the first `:` followed by a space or the end,
    outside quotes. Returns (key, rest) or None when the text is no mapping
    entry."""
    quote = None
    for i, c in enumerate(text):
        if quote:
            if c == quote:
                quote = None
        elif c in "\"'" and i == 0:
            quote = c
        elif c == ":" and (i + 1 == len(text) or text[i + 1] in " \t"):
            return _scalar(text[:i].strip(), None), text[i + 1:].strip()
        elif c in "[{" and i == 0:
            return None
    return None


def _scalar(text, line):
    if text.startswith('"'):
        if not text.endswith('"') or len(text) < 2:
            raise YamlSubsetError(f"line {line}: unterminated double-quoted string")
        body = text[1:-1]
        return re.sub(r'\\(["\\/nt])', lambda m: {"n": "\n", "t": "\t"}.get(m.group(1), m.group(1)), body)
    if text.startswith("'"):
        if not text.endswith("'") or len(text) < 2:
            raise YamlSubsetError(f"line {line}: unterminated single-quoted string")
        return text[1:-1].replace("''", "'")
    if text[:1] in ("|", ">"):
        raise YamlSubsetError(f"line {line}: block scalars (| and >) are outside the supported YAML subset")
    if text[:1] in ("!", "%", "@", "`"):
        raise YamlSubsetError(f"line {line}: '{text[:1]}' is outside the supported YAML subset")
    return text


def _split_flow(body, line):
    items, current, quote, depth = [], "", None, 0
    for c in body:
        if quote:
            current += c
            if c == quote:
                quote = None
        elif c in "\"'":
            quote = c
            current += c
        elif c in "[{":
            raise YamlSubsetError(f"line {line}: nested flow collections are outside the supported YAML subset")
        elif c == "," and depth == 0:
            items.append(current.strip())
            current = ""
        else:
            current += c
    if quote:
        raise YamlSubsetError(f"line {line}: unterminated quote in a flow collection")
    if current.strip():
        items.append(current.strip())
    return items


class YamlSubset:
    def __init__(self, text):
        self.lines = []
        for number, raw in enumerate(text.splitlines(), 1):
            if "\t" in raw[: len(raw) - len(raw.lstrip())]:
                raise YamlSubsetError(f"line {number}: tabs in indentation")
            stripped = _strip_comment(raw)
            if not stripped.strip() or stripped.strip() == "---":
                continue
            indent = len(stripped) - len(stripped.lstrip(" "))
            self.lines.append(_Line(number, indent, stripped.strip()))
        self.pos = 0
        self.anchors = {}

    def parse(self):
        if not self.lines:
            return None
        node = self._block(self.lines[0].indent)
        if self.pos < len(self.lines):
            line = self.lines[self.pos]
            raise YamlSubsetError(f"line {line.number}: unexpected indentation")
        return node

    def _block(self, indent):
        line = self.lines[self.pos]
        if line.text == "-" or line.text.startswith("- "):
            return self._sequence(indent)
        return self._mapping(indent)

    def _value(self, text, line, parent_indent):
        """The value after `key:` or `- `: inline, or the block below."""
        anchor = None
        if text.startswith("&"):
            anchor, _, text = text.partition(" ")
            anchor = anchor[1:]
            text = text.strip()
        if text == "":
            if self.pos < len(self.lines) and self.lines[self.pos].indent > parent_indent:
                value = self._block(self.lines[self.pos].indent)
            elif (self.pos < len(self.lines) and self.lines[self.pos].indent == parent_indent
                  and self.lines[self.pos].text.startswith("- ")):
                value = self._sequence(parent_indent)  # a list at the key's indentation
            else:
                value = None
        elif text.startswith("*"):
            name = text[1:]
            if name not in self.anchors:
                raise YamlSubsetError(f"line {line}: unknown alias *{name}")
            value = self.anchors[name]
        elif text.startswith("["):
            if not text.endswith("]"):
                raise YamlSubsetError(f"line {line}: multi-line flow lists are outside the supported YAML subset")
            value = [_scalar(item, line) for item in _split_flow(text[1:-1], line)]
        elif text.startswith("{"):
            if not text.endswith("}"):
                raise YamlSubsetError(f"line {line}: multi-line flow mappings are outside the supported YAML subset")
            value = {}
            for item in _split_flow(text[1:-1], line):
                pair = _split_key(item)
                if pair is None:
                    raise YamlSubsetError(f"line {line}: '{item}' is not a key: value pair")
                value[pair[0]] = _scalar(pair[1], line)
        else:
            value = _scalar(text, line)
        if anchor:
            self.anchors[anchor] = value
        return value

    def _mapping(self, indent):
        result = {}
        merged = set()  # keys that came from a `<<:` merge and may be overridden
        while self.pos < len(self.lines):
            line = self.lines[self.pos]
            if line.indent < indent:
                break
            if line.indent > indent:
                raise YamlSubsetError(f"line {line.number}: unexpected indentation")
            if line.text.startswith("- "):
                raise YamlSubsetError(f"line {line.number}: a list item where a key was expected")
            pair = _split_key(line.text)
            if pair is None:
                raise YamlSubsetError(f"line {line.number}: expected 'key: value', got '{line.text}'")
            key, rest = pair
            self.pos += 1
            value = self._value(rest, line.number, indent)
            if key == "<<":
                for merge in value if isinstance(value, list) else [value]:
                    if not isinstance(merge, dict):
                        raise YamlSubsetError(f"line {line.number}: '<<' needs a mapping alias")
                    for k, v in merge.items():
                        if k not in result:
                            result[k] = v
                            merged.add(k)
                continue
            if key in result and key not in merged:
                raise YamlSubsetError(f"line {line.number}: duplicate key '{key}'")
            merged.discard(key)
            result[key] = value
        return result

    def _sequence(self, indent):
        result = []
        while self.pos < len(self.lines):
            line = self.lines[self.pos]
            if line.indent != indent or not (line.text == "-" or line.text.startswith("- ")):
                if line.indent > indent:
                    raise YamlSubsetError(f"line {line.number}: unexpected indentation")
                break
            rest = line.text[1:].strip()
            if rest and _split_key(rest) is not None and not rest.startswith(("&", "*", "[", "{")):
                # `- key: value`: a mapping whose first entry shares the dash's line.
                line.indent = indent + 2 + (len(line.text[1:]) - len(line.text[1:].lstrip(" ")) - 1)
                line.text = rest
                result.append(self._mapping(line.indent))
            else:
                self.pos += 1
                result.append(self._value(rest, line.number, indent))
        return result


def load_yaml_subset(path):
    with open(path, encoding="utf-8") as f:
        return YamlSubset(f.read()).parse()


# ---- The two topologies -----------------------------------------------------

# The local script that runs each topology, and the variables a later Tocsin
# reads that a topology may set before Configuration.swift lists them.
PROFILES = {
    "default": {"script": "scripts/cluster.sh", "pending": set()},
    "ha": {"script": "scripts/ha-cluster.sh", "pending": set()},
}


class Topology:
    """command → {"replicas": n, "env": set of names, "names": [service names]}."""

    def __init__(self, source):
        self.source = source
        self.commands = {}
        self.nginx_upstream = []  # service names (compose) or the command (cluster)
        self.aliases = {}  # compose: serve service → names it answers to on nginx's networks
        self.database_urls = {}  # compose: service → (DATABASE_URL, DATABASE_READ_URL)
        self.nginx_networks = set()  # compose: the networks of the nginx service

    def add(self, command, replicas, env, name):
        entry = self.commands.setdefault(command, {"replicas": 0, "env": None, "names": []})
        entry["replicas"] += replicas
        entry["names"].append(name)
        return entry


def in_profile(service, profile):
    """Services without `profiles` are the default topology; a profile's are
    those that list it."""
    profiles = service.get("profiles") if isinstance(service, dict) else None
    if not profiles:
        return profile == "default"
    return profile in (profiles if isinstance(profiles, list) else [profiles])


def service_networks(service):
    """network → aliases; {"default": []} for a service without `networks`."""
    networks = service.get("networks")
    if isinstance(networks, list):
        return {str(n): [] for n in networks}
    if isinstance(networks, dict):
        return {str(n): list((cfg or {}).get("aliases") or []) if isinstance(cfg, dict) else [] for n, cfg in networks.items()}
    return {"default": []}


def compose_topology(path, problems, profile="default"):
    doc = load_yaml_subset(path)
    if not isinstance(doc, dict) or not isinstance(doc.get("services"), dict):
        raise YamlSubsetError(f"{path}: no services: mapping")
    source = "docker/compose.yaml" + ("" if profile == "default" else f" (profile {profile})")
    topo = Topology(source)
    depends = {}
    restart = {}
    serve_networks = {}
    for name, service in doc["services"].items():
        if not isinstance(service, dict):
            problems.append(f"compose.yaml: service {name} is not a mapping")
            continue
        if not in_profile(service, profile):
            continue
        image = str(service.get("image") or "")
        build = service.get("build")
        dockerfile = build.get("dockerfile", "") if isinstance(build, dict) else ""
        bare_image = image.split("/")[-1]
        replicas = 1
        deploy = service.get("deploy")
        if isinstance(deploy, dict) and deploy.get("replicas") is not None:
            try:
                replicas = int(deploy["replicas"])
            except ValueError:
                problems.append(f"compose.yaml: service {name}: deploy.replicas is not a number")
        environment = service.get("environment") or {}
        if isinstance(environment, list):
            env = {str(item).split("=", 1)[0] for item in environment}
        elif isinstance(environment, dict):
            env = set(environment)
        else:
            env = set()
            problems.append(f"compose.yaml: service {name}: environment is neither a mapping nor a list")
        command = service.get("command")
        first = (str(command[0]) if isinstance(command, list) and command
                 else command.split()[0] if isinstance(command, str) and command.strip() else "")
        if first == "etcd" or bare_image.startswith("etcd"):
            topo.add("etcd", replicas, set(), name)
        elif "patroni" in dockerfile or "patroni" in bare_image:
            topo.add("patroni", replicas, set(), name)
            if first and first != "patroni":
                problems.append(f"compose.yaml: service {name} (the Patroni image) runs {first}, not patroni")
        elif "tocsin" in image or dockerfile.endswith("docker/Dockerfile"):
            command = service.get("command")
            if isinstance(command, list) and command:
                command = str(command[0])
            elif isinstance(command, str) and command.strip():
                command = command.split()[0]
            else:
                command = "run"  # the image's CMD
            entry = topo.add(command, replicas, env, name)
            if entry["env"] is None:
                entry["env"] = env
            elif entry["env"] != env:
                problems.append(f"compose.yaml: the `{command}` services differ in their variables: "
                                f"{name} has {sorted(env ^ entry['env'])} where another has not")
            dep = service.get("depends_on") or {}
            depends[name] = dep if isinstance(dep, dict) else {d: {"condition": "service_started"} for d in dep}
            restart[name] = str(service.get("restart", "no"))
            if isinstance(environment, dict):
                topo.database_urls[name] = (str(environment.get("DATABASE_URL") or ""),
                                            str(environment.get("DATABASE_READ_URL") or ""))
            if command == "serve":
                serve_networks[name] = service_networks(service)
        elif bare_image.startswith("nginx"):
            topo.add("nginx", replicas, set(), name)
            topo.nginx_networks = set(service_networks(service))
            mounts = service.get("volumes") or []
            if not any(str(m).split(":")[0].endswith("nginx.conf") for m in mounts):
                problems.append(f"compose.yaml: service {name} does not mount docker/nginx.conf")
        elif bare_image.startswith("postgres"):
            topo.add("postgres", replicas, set(), name)
        else:
            problems.append(f"compose.yaml: service {name} (image {image or '?'}) is neither tocsin, nginx nor postgres")
    # The names a serve service answers to for nginx: its own, and its
    # aliases on the networks it shares with nginx.
    for name, networks in serve_networks.items():
        topo.aliases[name] = {name} | {str(a) for n, aliases in networks.items()
                                       if n in topo.nginx_networks for a in aliases}
    # `migrate once`: a one-shot that the long-running services wait for.
    migrate_names = topo.commands.get("migrate", {}).get("names", [])
    for name in migrate_names:
        if restart.get(name) not in ("no", "on-failure"):
            problems.append(f"compose.yaml: {name} must not be restarted once done (restart: \"no\"), it has restart: {restart.get(name)}")
    for command in ("serve", "worker"):
        for name in topo.commands.get(command, {}).get("names", []):
            conditions = {dep: (cfg or {}).get("condition") for dep, cfg in depends.get(name, {}).items()}
            if not any(conditions.get(m) == "service_completed_successfully" for m in migrate_names):
                problems.append(f"compose.yaml: {name} must depend on the migrate service with "
                                f"condition: service_completed_successfully")
    return topo, doc


def cluster_topology(root, problems, profile="default"):
    relative = PROFILES[profile]["script"]
    script = os.path.join(root, relative)
    out = subprocess.run(["bash", script, "--print-topology"], capture_output=True, text=True, timeout=60)
    if out.returncode != 0:
        raise RuntimeError(f"{relative} --print-topology failed: {out.stderr.strip()}")
    topo = Topology(relative)
    for raw in out.stdout.splitlines():
        if not raw.strip():
            continue
        name, *fields = raw.split()
        attrs = dict(f.split("=", 1) for f in fields)
        command = attrs.get("command", name)
        env = set(filter(None, attrs.get("env", "").split(",")))
        entry = topo.add(command, int(attrs.get("replicas", "1")), env, name)
        entry["env"] = env
        if command == "nginx":
            topo.nginx_upstream = [attrs.get("upstream", "")]
    return topo


def nginx_upstream(path):
    """The `server host:port` entries of the `upstream tocsin_api` block."""
    with open(path, encoding="utf-8") as f:
        text = f.read()
    match = re.search(r"upstream\s+tocsin_api\s*\{(.*?)\}", text, re.S)
    if not match:
        return None
    servers = []
    for line in match.group(1).splitlines():
        line = line.split("#", 1)[0].strip()
        m = re.match(r"server\s+([^\s;]+)", line)
        if m:
            servers.append(m.group(1))
    return servers


def known_variables(root):
    path = os.path.join(root, "Sources", "TocsinCore", "Configuration.swift")
    try:
        with open(path, encoding="utf-8") as f:
            names = re.findall(r'Variable\(name:\s*"([A-Z0-9_]+)"', f.read())
    except OSError:
        names = []
    if names:
        return set(names), os.path.relpath(path, root)
    try:  # fall back on the README's table
        with open(os.path.join(root, "README.md"), encoding="utf-8") as f:
            return set(re.findall(r"^\|\s*`([A-Z0-9_]+)`\s*\|", f.read(), re.M)), "README.md"
    except OSError:
        return None, None


def check_profile(root, profile, problems):
    """Compares one topology; appends to problems; returns the summary line."""
    compose_path = os.path.join(root, "docker", "compose.yaml")
    compose, _ = compose_topology(compose_path, problems, profile)
    cluster = cluster_topology(root, problems, profile)
    script = cluster.source
    database = "patroni" if profile == "ha" else "postgres"

    for command in sorted(set(compose.commands) | set(cluster.commands)):
        a, b = compose.commands.get(command), cluster.commands.get(command)
        if a is None:
            problems.append(f"`{command}` runs in {script} but not in {compose.source}")
            continue
        if b is None:
            problems.append(f"`{command}` runs in {compose.source} ({', '.join(a['names'])}) but not in {script}")
            continue
        if a["replicas"] != b["replicas"]:
            problems.append(f"`{command}`: {a['replicas']} in {compose.source} ({', '.join(a['names'])}) "
                            f"but {b['replicas']} in {script}")
        if command in ("postgres", "nginx", "etcd", "patroni"):
            continue
        only_compose = sorted((a["env"] or set()) - (b["env"] or set()))
        only_cluster = sorted((b["env"] or set()) - (a["env"] or set()))
        if only_compose:
            problems.append(f"`{command}`: variables only in {compose.source}: {', '.join(only_compose)}")
        if only_cluster:
            problems.append(f"`{command}`: variables only in {script}: {', '.join(only_cluster)}")
    once = [("migrate", 1), ("nginx", 1)] + ([("postgres", 1)] if profile == "default" else [("patroni", 3)])
    for command, expected in once:
        for topo in (compose, cluster):
            got = topo.commands.get(command, {}).get("replicas", 0)
            if got != expected and (command in topo.commands or command == database):
                problems.append(f"{topo.source}: `{command}` must run {'once' if expected == 1 else f'{expected} times'}, "
                                f"runs {got} times")
    for command in ("serve", "worker"):
        for topo in (compose, cluster):
            if topo.commands.get(command, {}).get("replicas", 0) < 2:
                problems.append(f"{topo.source}: `{command}` needs at least 2 instances")
    if profile == "ha":
        for topo in (compose, cluster):
            if topo.commands.get("etcd", {}).get("replicas", 0) < 1:
                problems.append(f"{topo.source}: no etcd for Patroni")
            if "postgres" in topo.commands:
                problems.append(f"{topo.source}: a plain PostgreSQL service in the HA topology")
        # Every Tocsin service reaches every Patroni node, writing to the primary.
        nodes = compose.commands.get("patroni", {}).get("names", [])
        for name, (url, read_url) in sorted(compose.database_urls.items()):
            hosts = re.sub(r"^[a-z]+://(?:[^@/]*@)?", "", url).split("/", 1)[0]
            listed = [h.rsplit(":", 1)[0] for h in hosts.split(",") if h]
            if sorted(listed) != sorted(nodes):
                problems.append(f"{compose.source}: {name}: DATABASE_URL hosts {listed} are not the Patroni nodes {nodes}")
            if "target_session_attrs=read-write" not in url:
                problems.append(f"{compose.source}: {name}: DATABASE_URL lacks target_session_attrs=read-write")
            if read_url and "target_session_attrs=prefer-standby" not in read_url:
                problems.append(f"{compose.source}: {name}: DATABASE_READ_URL lacks target_session_attrs=prefer-standby")

    # nginx in front of every serve instance, and nothing else.
    upstream = nginx_upstream(os.path.join(root, "docker", "nginx.conf"))
    serve_names = compose.commands.get("serve", {}).get("names", [])
    if upstream is None:
        problems.append("docker/nginx.conf: no `upstream tocsin_api` block")
    else:
        hosts = [s.rsplit(":", 1)[0] for s in upstream]
        # An upstream name is a serve service's name or one of its aliases.
        answers = {}
        for service in serve_names:
            for alias in compose.aliases.get(service, {service}):
                answers[alias] = service
        matched = sorted(answers.get(h, h) for h in hosts)
        if profile == "default" and sorted(hosts) != sorted(serve_names) or matched != sorted(serve_names):
            problems.append(f"docker/nginx.conf: upstream servers {hosts} are not the `serve` services "
                            f"of {compose.source} {serve_names}")
        services = compose_doc_services(compose_path)
        for server in upstream:
            host, _, port = server.rpartition(":")
            env = (services.get(answers.get(host, host)) or {}).get("environment") or {}
            if isinstance(env, dict) and str(env.get("PORT", "8080")) != port:
                problems.append(f"docker/nginx.conf: upstream {server} but {host} listens on PORT={env.get('PORT')}")
    if cluster.nginx_upstream and cluster.nginx_upstream != ["serve"]:
        problems.append(f"{script}: nginx forwards to {cluster.nginx_upstream}, not to the serve instances")

    known, known_source = known_variables(root)
    pending_used = set()
    if known:
        for topo in (compose, cluster):
            for command, entry in topo.commands.items():
                used = entry["env"] or set()
                pending_used |= (used & PROFILES[profile]["pending"]) - known
                unknown = sorted(used - known - PROFILES[profile]["pending"])
                if unknown:
                    problems.append(f"{topo.source}: `{command}` sets variables Tocsin does not know "
                                    f"({known_source}): {', '.join(unknown)}")

    order = ("etcd", "patroni", "postgres", "migrate", "serve", "worker", "nginx")
    summary = ", ".join(f"{c} ×{compose.commands[c]['replicas']}" for c in order if c in compose.commands)
    variables = set().union(*(e["env"] or set() for c, e in compose.commands.items() if c not in ("etcd", "patroni")))
    note = (f" ({', '.join(sorted(pending_used))} not yet read by this Tocsin)" if pending_used else "")
    return (f"topology ok{'' if profile == 'default' else ' (' + profile + ')'}: {summary}; "
            f"nginx → {', '.join(upstream or [])}; {len(variables)} Tocsin variables, same in {compose.source} "
            f"and {script}{note}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", default=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    parser.add_argument("--profile", choices=sorted(PROFILES), action="append",
                        help="check only this topology (default: every one compose.yaml has)")
    args = parser.parse_args()
    root = args.root
    problems = []
    summaries = []
    try:
        profiles = args.profile
        if not profiles:
            doc = load_yaml_subset(os.path.join(root, "docker", "compose.yaml"))
            services = (doc or {}).get("services") or {}
            profiles = [p for p in PROFILES if any(in_profile(s, p) for s in services.values())]
        for profile in profiles:
            found = []
            summaries.append(check_profile(root, profile, found))
            problems += [f"{profile}: {p}" if profile != "default" else p for p in found]
    except (YamlSubsetError, OSError, RuntimeError, subprocess.TimeoutExpired) as e:
        print(f"check_topology: error: {e}", file=sys.stderr)
        return 1

    if problems:
        for p in problems:
            print(f"topology mismatch: {p}", file=sys.stderr)
        print(f"check_topology: {len(problems)} problem(s): docker/compose.yaml and the local cluster scripts disagree",
              file=sys.stderr)
        return 1
    for summary in summaries:
        print(summary)
    return 0


def compose_doc_services(path):
    doc = load_yaml_subset(path)
    return doc.get("services", {}) if isinstance(doc, dict) else {}


if __name__ == "__main__":
    sys.exit(main())
