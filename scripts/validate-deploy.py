#!/usr/bin/env python3
"""Offline checks of deploy/ (run by scripts/validate-deploy.sh, which installs the tools).

Subcommands:
  manifests                 render the kustomize overlays; core kinds through kubernetes-validate --strict,
                            CRD kinds through check-jsonschema against deploy/kubernetes/schemas (made strict);
                            pod, KEDA and grace-period rules; compose against the compose-spec schema
  trigger-selftest          the Kafka-trigger rules catch what they are meant to catch (mutated copies)
  metric-names METRICS      every norbert_worker_* name in the alerts and the dashboard is on the live page
  check-config BINARY       every container command line + environment (compose, rendered Kubernetes) through
                            `BINARY serve --check-config`, with /models mapped onto the tiny test heads
  healthcheck-command       prints the Dockerfile's HEALTHCHECK command (to run it against a live worker)
"""
import copy
import json
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile

import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEPLOY = os.path.join(ROOT, "deploy")
K8S = os.path.join(DEPLOY, "kubernetes")
OVERLAYS = ["dev", "production"]
COMPOSE = os.path.join(DEPLOY, "compose", "compose.yaml")
FIXTURES = os.path.join(ROOT, "Tests", "Fixtures")
CRD_SCHEMAS = {
    ("keda.sh/v1alpha1", "ScaledObject"): "keda.sh_v1alpha1_scaledobject.json",
    ("keda.sh/v1alpha1", "TriggerAuthentication"): "keda.sh_v1alpha1_triggerauthentication.json",
    ("monitoring.coreos.com/v1", "PodMonitor"): "monitoring.coreos.com_v1_podmonitor.json",
}
# KEDA's `kafka` scaler: trigger metadata it reads (pkg/scalers/kafka_scaler.go) and the
# TriggerAuthentication parameters. A key outside these is a typo KEDA would silently ignore.
KAFKA_TRIGGER_REQUIRED = ["bootstrapServers", "consumerGroup", "topic", "lagThreshold", "activationLagThreshold", "offsetResetPolicy"]
KAFKA_TRIGGER_KEYS = set(KAFKA_TRIGGER_REQUIRED) | {
    "allowIdleConsumers", "scaleToZeroOnInvalidOffset", "excludePersistentLag", "limitToPartitionsWithLag",
    "ensureEvenDistributionOfPartitions", "partitionLimitation", "version", "sasl", "tls", "unsafeSsl",
    "saslTokenProvider", "awsRegion", "awsEndpoint", "bootstrapServersFromEnv", "consumerGroupFromEnv", "topicFromEnv",
}
KAFKA_AUTH_PARAMETERS = {"sasl", "username", "password", "tls", "ca", "cert", "key", "keyPassword", "oauthTokenEndpointUri",
                         "scopes", "oauthExtensions", "realm", "kerberosConfig", "serviceName", "keytab"}
PARTITIONS_ANNOTATION = "norbert.example/request-partitions"
DEFAULT_DRAIN_MS = 15000
SHUTDOWN_OVERHEAD_S = 10  # docs/worker.md: shutdown takes at most drain-timeout-ms + 10 s
SASL_MECHANISMS = {"PLAIN": "plaintext", "SCRAM-SHA-256": "scram_sha256", "SCRAM-SHA-512": "scram_sha512"}

failures = []


def fail(message):
    failures.append(message)
    print(f"  FAIL {message}")


def ok(message):
    print(f"  ok   {message}")


def run(argv, **kwargs):
    return subprocess.run(argv, capture_output=True, text=True, **kwargs)


def render(overlay):
    out = run(["kubectl", "kustomize", os.path.join(K8S, "overlays", overlay)])
    if out.returncode != 0:
        fail(f"kubectl kustomize overlays/{overlay}: {out.stderr.strip()}")
        return "", []
    return out.stdout, [d for d in yaml.safe_load_all(out.stdout) if d]


def strict(schema):
    """additionalProperties: false on every object schema that lists properties (like --strict)."""
    if isinstance(schema, dict):
        if schema.get("type") == "object" and "properties" in schema and "additionalProperties" not in schema:
            schema["additionalProperties"] = False
        for value in schema.values():
            strict(value)
    elif isinstance(schema, list):
        for value in schema:
            strict(value)
    return schema


# --- worker settings as the manifests give them ---------------------------------------------

def env_name(setting):
    return "NORBERT_WORKER_" + setting.upper().replace("-", "_")


def flag_values(args, name):
    values = []
    for i, arg in enumerate(args):
        if arg == f"--{name}" and i + 1 < len(args):
            values.append(args[i + 1])
        elif arg.startswith(f"--{name}="):
            values.append(arg.split("=", 1)[1])
    return values


def effective(name, args, env, config):
    """A setting's value: flag > NORBERT_WORKER_ variable > config file (docs/worker.md)."""
    flags = flag_values(args, name)
    if flags:
        return flags[-1]
    if env_name(name) in env:
        return env[env_name(name)]
    return config.get(name)


def kafka_property(key, args, env, config):
    for pair in reversed(flag_values(args, "kafka")):
        if pair.split("=", 1)[0] == key:
            return pair.split("=", 1)[1]
    variable = "NORBERT_WORKER_KAFKA_" + key.upper().replace(".", "_")
    if variable in env:
        return env[variable]
    return (config.get("kafka") or {}).get(key)


def pod_settings(docs, workload):
    """(args, env with placeholders, config dict, container) of the worker container."""
    container = workload["spec"]["template"]["spec"]["containers"][0]
    configmaps = {d["metadata"]["name"]: d.get("data", {}) for d in docs if d["kind"] == "ConfigMap"}
    env = {}
    for item in container.get("env", []):
        env[item["name"]] = resolve_env(item, workload, container, configmaps)
    config = {}
    path = env.get("NORBERT_WORKER_CONFIG")
    if path:
        for volume_name, mount in mounts(workload, container):
            if path.startswith(mount["mountPath"].rstrip("/") + "/"):
                volume = volume_name
                source = configmaps.get(volume.get("configMap", {}).get("name"), {})
                config = json.loads(source.get(os.path.basename(path), "{}"))
    return container.get("args", []), env, config, container


def mounts(workload, container):
    volumes = {v["name"]: v for v in workload["spec"]["template"]["spec"].get("volumes", [])}
    return [(volumes.get(m["name"], {}), m) for m in container.get("volumeMounts", [])]


def resolve_env(item, workload, container, configmaps):
    if "value" in item:
        return item["value"]
    source = item.get("valueFrom", {})
    if "fieldRef" in source:
        field = source["fieldRef"]["fieldPath"]
        return {"metadata.name": workload["metadata"]["name"] + "-0",
                "metadata.namespace": workload["metadata"].get("namespace", "default")}.get(field, "placeholder")
    if "resourceFieldRef" in source:
        ref = source["resourceFieldRef"]
        kind, _, resource = ref["resource"].partition(".")
        quantity = str(container.get("resources", {}).get(kind, {}).get(resource, "1"))
        cores = float(quantity[:-1]) / 1000 if quantity.endswith("m") else float(quantity)
        return str(max(1, math.ceil(cores / float(ref.get("divisor", "1")))))
    if "configMapKeyRef" in source:
        ref = source["configMapKeyRef"]
        return configmaps.get(ref["name"], {}).get(ref["key"], "")
    if "secretKeyRef" in source:
        return "secret-placeholder"
    return ""


# --- manifests --------------------------------------------------------------------------------

def check_manifests():
    tmp = tempfile.mkdtemp(prefix="validate-deploy-")
    try:
        for overlay in OVERLAYS:
            print(f"overlays/{overlay}:")
            text, docs = render(overlay)
            if not docs:
                continue
            core = [d for d in docs if (d["apiVersion"], d["kind"]) not in CRD_SCHEMAS]
            core_file = os.path.join(tmp, f"{overlay}-core.yaml")
            with open(core_file, "w") as f:
                yaml.safe_dump_all(core, f)
            out = run(["kubernetes-validate", "--strict", "--quiet", core_file])
            if out.returncode != 0 or "ERROR" in out.stdout + out.stderr or "WARN" in out.stdout + out.stderr:
                fail(f"kubernetes-validate --strict ({overlay}):\n{out.stdout}{out.stderr}")
            else:
                ok(f"kubernetes-validate --strict: {len(core)} objects ({', '.join(sorted({d['kind'] for d in core}))})")
            for doc in docs:
                key = (doc["apiVersion"], doc["kind"])
                if key not in CRD_SCHEMAS:
                    continue
                with open(os.path.join(K8S, "schemas", CRD_SCHEMAS[key])) as f:
                    schema = strict(json.load(f))
                schema_file = os.path.join(tmp, "strict-" + CRD_SCHEMAS[key])
                with open(schema_file, "w") as f:
                    json.dump(schema, f)
                instance = os.path.join(tmp, f"{overlay}-{doc['kind']}-{doc['metadata']['name']}.json")
                with open(instance, "w") as f:
                    json.dump(doc, f)
                out = run(["check-jsonschema", "--schemafile", schema_file, instance])
                if out.returncode != 0:
                    fail(f"{doc['kind']} {doc['metadata']['name']} ({overlay}) against {CRD_SCHEMAS[key]}:\n{out.stdout}{out.stderr}")
                else:
                    ok(f"{doc['kind']}/{doc['metadata']['name']} against the {doc['kind']} CRD schema (strict)")
            check_workload(docs, overlay)
            for problem in trigger_problems(docs):
                fail(f"{overlay}: {problem}")
            if any(d["kind"] == "ScaledObject" for d in docs):
                ok("KEDA Kafka trigger: keys, string values, group/topic/servers/offset reset match the worker, "
                   "maxReplicaCount <= partitions, SASL/TLS match")
        print("compose:")
        out = run(["check-jsonschema", "--builtin-schema", "vendor.compose-spec", COMPOSE])
        if out.returncode != 0:
            fail(f"compose.yaml against the compose-spec schema:\n{out.stdout}{out.stderr}")
        else:
            ok("compose.yaml against the compose-spec schema")
        check_compose()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def check_workload(docs, overlay):
    workloads = [d for d in docs if d["kind"] in ("StatefulSet", "Deployment")]
    if len(workloads) != 1:
        fail(f"{overlay}: expected one worker StatefulSet/Deployment, found {len(workloads)}")
        return
    workload = workloads[0]
    pod = workload["spec"]["template"]["spec"]
    args, env, config, container = pod_settings(docs, workload)
    problems = []
    # Kubernetes injects <SERVICE>_SERVICE_HOST, <SERVICE>_PORT, … for every Service of the
    # namespace unless enableServiceLinks is false; a Service named norbert-worker… becomes
    # NORBERT_WORKER_… variables, which the worker refuses as unknown settings.
    if pod.get("enableServiceLinks", True) is not False:
        problems.append("enableServiceLinks must be false (Service env vars named NORBERT_WORKER_* stop the worker)")
    drain_ms = int(effective("drain-timeout-ms", args, env, config) or DEFAULT_DRAIN_MS)
    grace = pod.get("terminationGracePeriodSeconds", 30)
    if grace <= drain_ms / 1000 + SHUTDOWN_OVERHEAD_S:
        problems.append(f"terminationGracePeriodSeconds {grace} must exceed drain-timeout-ms/1000 + {SHUTDOWN_OVERHEAD_S} = {drain_ms / 1000 + SHUTDOWN_OVERHEAD_S}")
    security = container.get("securityContext", {})
    pod_security = pod.get("securityContext", {})
    if not (security.get("runAsNonRoot") or pod_security.get("runAsNonRoot")):
        problems.append("runAsNonRoot not set")
    if security.get("readOnlyRootFilesystem") is not True:
        problems.append("readOnlyRootFilesystem not true")
    if security.get("allowPrivilegeEscalation") is not False:
        problems.append("allowPrivilegeEscalation not false")
    if "ALL" not in security.get("capabilities", {}).get("drop", []):
        problems.append("capabilities.drop lacks ALL")
    if container.get("livenessProbe", {}).get("httpGet", {}).get("path") != "/livez":
        problems.append("livenessProbe is not GET /livez")
    if container.get("readinessProbe", {}).get("httpGet", {}).get("path") != "/readyz":
        problems.append("readinessProbe is not GET /readyz")
    limits = container.get("resources", {}).get("limits", {})
    if "memory" not in limits or "cpu" not in limits:
        problems.append("resources.limits needs cpu and memory")
    if workload["kind"] == "StatefulSet" and "NORBERT_WORKER_INSTANCE_ID" not in env and not flag_values(args, "instance-id"):
        problems.append("a StatefulSet without --instance-id gains nothing from its stable names")
    if not any(d["kind"] == "PodDisruptionBudget" for d in docs):
        problems.append("no PodDisruptionBudget")
    for problem in problems:
        fail(f"{overlay}: {problem}")
    if not problems:
        ok(f"pod: service links off, grace {grace} s > drain {drain_ms / 1000:g} s + {SHUTDOWN_OVERHEAD_S} s, non-root, "
           "read-only root, no escalation, caps dropped, /livez + /readyz probes, limits, PDB")


def trigger_problems(docs):
    """Rules for KEDA's Kafka trigger against the worker it scales (also run on mutated copies)."""
    problems = []
    workloads = {(d["kind"], d["metadata"]["name"]): d for d in docs if d["kind"] in ("StatefulSet", "Deployment")}
    auths = {d["metadata"]["name"]: d for d in docs if d["kind"] == "TriggerAuthentication"}
    for so in (d for d in docs if d["kind"] == "ScaledObject"):
        spec = so["spec"]
        target = spec.get("scaleTargetRef", {})
        workload = workloads.get((target.get("kind", "Deployment"), target.get("name")))
        if workload is None:
            problems.append(f"ScaledObject {so['metadata']['name']}: scaleTargetRef {target} names no worker in the render")
            continue
        args, env, config, _ = pod_settings(docs, workload)
        partitions = so["metadata"].get("annotations", {}).get(PARTITIONS_ANNOTATION)
        if partitions is None or not str(partitions).isdigit():
            problems.append(f"annotation {PARTITIONS_ANNOTATION} (the request topic's partition count) missing or not a number")
        elif spec.get("maxReplicaCount", 100) > int(partitions):
            problems.append(f"maxReplicaCount {spec.get('maxReplicaCount', 100)} exceeds the {partitions} partitions")
        if spec.get("minReplicaCount", 0) > spec.get("maxReplicaCount", 100):
            problems.append("minReplicaCount above maxReplicaCount")
        for trigger in spec.get("triggers", []):
            if trigger.get("type") != "kafka":
                continue
            meta = trigger.get("metadata", {})
            for key in KAFKA_TRIGGER_REQUIRED:
                if key not in meta:
                    problems.append(f"kafka trigger: {key} missing")
            for key, value in meta.items():
                if key not in KAFKA_TRIGGER_KEYS:
                    problems.append(f"kafka trigger: unknown key {key!r} (KEDA ignores it)")
                if not isinstance(value, str):
                    problems.append(f"kafka trigger: {key} is {type(value).__name__} {value!r}; KEDA metadata values are strings")
            for key, minimum in (("lagThreshold", 1), ("activationLagThreshold", 0)):
                value = meta.get(key)
                if isinstance(value, str) and not (value.isdigit() and int(value) >= minimum):
                    problems.append(f"kafka trigger: {key} {value!r} is not a whole number >= {minimum}")
            reset = kafka_property("auto.offset.reset", args, env, config) or "earliest"
            if meta.get("offsetResetPolicy") != reset:
                problems.append(f"kafka trigger: offsetResetPolicy {meta.get('offsetResetPolicy')!r} differs from the worker's "
                                f"auto.offset.reset {reset!r} (KEDA would count a partition without offsets differently)")
            group = effective("group", args, env, config) or "norbert-worker"
            if meta.get("consumerGroup") != group:
                problems.append(f"kafka trigger: consumerGroup {meta.get('consumerGroup')!r} is not the worker's group {group!r}")
            requests = effective("requests", args, env, config) or ["norbert-requests"]
            requests = requests if isinstance(requests, list) else requests.split(",")
            if meta.get("topic") not in requests:
                problems.append(f"kafka trigger: topic {meta.get('topic')!r} is not a request topic of the worker {requests}")
            servers = effective("bootstrap-servers", args, env, config)
            if meta.get("bootstrapServers") != servers:
                problems.append(f"kafka trigger: bootstrapServers {meta.get('bootstrapServers')!r} differ from the worker's {servers!r}")
            protocol = (kafka_property("security.protocol", args, env, config) or "PLAINTEXT").upper()
            mechanism = (kafka_property("sasl.mechanism", args, env, config) or "GSSAPI").upper()
            auth = auths.get(trigger.get("authenticationRef", {}).get("name"))
            parameters = {ref["parameter"] for ref in (auth or {}).get("spec", {}).get("secretTargetRef", [])}
            unknown = parameters - KAFKA_AUTH_PARAMETERS
            if unknown:
                problems.append(f"TriggerAuthentication: unknown kafka parameters {sorted(unknown)}")
            sasl = meta.get("sasl") or ("sasl" if "sasl" in parameters else None)
            tls = meta.get("tls") or ("tls" if "tls" in parameters else None)
            if protocol.startswith("SASL"):
                expected = SASL_MECHANISMS.get(mechanism)
                if meta.get("sasl") != expected and "sasl" not in parameters:
                    problems.append(f"kafka trigger: sasl {meta.get('sasl')!r} does not match the worker's sasl.mechanism {mechanism}")
                if auth is None or not {"username", "password"} <= parameters:
                    problems.append("kafka trigger: SASL needs a TriggerAuthentication with username and password")
            elif sasl:
                problems.append("kafka trigger: sasl set but the worker does not use SASL")
            if protocol in ("SSL", "SASL_SSL") and meta.get("tls") != "enable" and "tls" not in parameters:
                problems.append("kafka trigger: the worker uses TLS; set tls: enable")
            if protocol in ("PLAINTEXT", "SASL_PLAINTEXT") and tls and meta.get("tls") == "enable":
                problems.append("kafka trigger: tls enabled but the worker connects without TLS")
    return problems


def check_compose():
    with open(COMPOSE) as f:
        compose = yaml.safe_load(f)
    worker = compose["services"]["worker"]
    env = {k: interpolate(str(v)) for k, v in worker.get("environment", {}).items()}
    drain_ms = int(env.get("NORBERT_WORKER_DRAIN_TIMEOUT_MS", DEFAULT_DRAIN_MS))
    grace = parse_seconds(worker.get("stop_grace_period", "10s"))
    if grace <= drain_ms / 1000 + SHUTDOWN_OVERHEAD_S:
        fail(f"compose worker: stop_grace_period {grace} s must exceed drain {drain_ms / 1000:g} s + {SHUTDOWN_OVERHEAD_S} s")
    elif "NORBERT_WORKER_INSTANCE_ID" in env:
        fail("compose worker: NORBERT_WORKER_INSTANCE_ID would be shared by every replica (--scale): they fence each other")
    else:
        ok(f"compose worker: stop_grace_period {grace:g} s > drain {drain_ms / 1000:g} s + {SHUTDOWN_OVERHEAD_S} s, no shared instance id")


def parse_seconds(text):
    total = 0.0
    for number, unit in re.findall(r"([0-9.]+)(ms|s|m|h)", str(text)):
        total += float(number) * {"ms": 0.001, "s": 1, "m": 60, "h": 3600}[unit]
    return total


def interpolate(text):
    """compose's ${VAR:-default} / ${VAR} with the defaults (the environment is not consulted)."""
    return re.sub(r"\$\{([A-Z0-9_]+)(?::?-([^}]*))?\}", lambda m: m.group(2) or "", text)


# --- the Kafka trigger rules, tested ----------------------------------------------------------

def trigger_selftest():
    _, docs = render("production")
    if failures:
        return
    baseline = trigger_problems(docs)
    if baseline:
        fail(f"production render has trigger problems: {baseline}")
        return

    def trigger(d):
        return next(x for x in d if x["kind"] == "ScaledObject")["spec"]["triggers"][0]

    def scaled(d):
        return next(x for x in d if x["kind"] == "ScaledObject")

    mutations = [
        ("misspelled key", lambda d: trigger(d)["metadata"].update(lagTreshold="10"), "unknown key 'lagTreshold'"),
        ("missing activationLagThreshold", lambda d: trigger(d)["metadata"].pop("activationLagThreshold"), "activationLagThreshold missing"),
        ("boolean value", lambda d: trigger(d)["metadata"].update(allowIdleConsumers=False), "metadata values are strings"),
        ("integer value", lambda d: trigger(d)["metadata"].update(lagThreshold=300), "metadata values are strings"),
        ("zero lagThreshold", lambda d: trigger(d)["metadata"].update(lagThreshold="0"), "lagThreshold '0'"),
        ("offsetResetPolicy latest", lambda d: trigger(d)["metadata"].update(offsetResetPolicy="latest"), "auto.offset.reset"),
        ("other group", lambda d: trigger(d)["metadata"].update(consumerGroup="norbert-other"), "consumerGroup"),
        ("other topic", lambda d: trigger(d)["metadata"].update(topic="norbert-results"), "topic"),
        ("other servers", lambda d: trigger(d)["metadata"].update(bootstrapServers="kafka:9092"), "bootstrapServers"),
        ("more replicas than partitions", lambda d: scaled(d)["spec"].update(maxReplicaCount=13), "exceeds the 12 partitions"),
        ("no partition annotation", lambda d: scaled(d)["metadata"]["annotations"].pop(PARTITIONS_ANNOTATION), "annotation"),
        ("wrong SASL mechanism", lambda d: trigger(d)["metadata"].update(sasl="scram_sha256"), "sasl.mechanism"),
        ("TLS off", lambda d: trigger(d)["metadata"].pop("tls"), "tls: enable"),
        ("no credentials", lambda d: trigger(d).pop("authenticationRef"), "username and password"),
    ]
    for name, mutate, expected in mutations:
        copy_docs = copy.deepcopy(docs)
        mutate(copy_docs)
        problems = trigger_problems(copy_docs)
        if any(expected in p for p in problems):
            ok(f"trigger rule catches: {name}")
        else:
            fail(f"trigger rule missed: {name} (expected a problem with {expected!r}, got {problems})")


# --- metric names -----------------------------------------------------------------------------

def metric_names(page_path):
    with open(page_path) as f:
        page = f.read()
    live = set()
    for line in page.splitlines():
        if line.startswith("# TYPE "):
            name, kind = line.split()[2:4]
            live.add(name)
            if kind == "histogram":
                live |= {name + "_bucket", name + "_sum", name + "_count"}
        elif line and not line.startswith("#"):
            live.add(re.split(r"[{ ]", line, 1)[0])
    used = {}
    sources = [os.path.join(DEPLOY, "observability", "alerts.yaml"), os.path.join(DEPLOY, "observability", "grafana-dashboard.json")]
    for path in sources:
        with open(path) as f:
            for name in re.findall(r"norbert_worker_[a-z0-9_]+", f.read()):
                used.setdefault(name, set()).add(os.path.basename(path))
    missing = sorted(n for n in used if n not in live)
    for name in missing:
        fail(f"{name} (used in {', '.join(sorted(used[name]))}) is not on the live /metrics page")
    if not missing:
        ok(f"{len(used)} metric names used by the alerts and the dashboard are all on the live /metrics page")
    with open(os.path.join(DEPLOY, "observability", "grafana-dashboard.json")) as f:
        dashboard = json.load(f)
    exprs = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    ok(f"dashboard JSON: {len(dashboard['panels'])} panels, {len(exprs)} queries")


# --- serve --check-config on every command line ------------------------------------------------

TINY_BY_NAME = [("sentiment", "sequence-classification"), ("class", "sequence-classification"), ("ner", "token-classification"),
                ("token", "token-classification"), ("qa", "question-answering"), ("question", "question-answering"),
                ("mlm", "mlm"), ("mask", "mlm"), ("mc", "multiple-choice"), ("choice", "multiple-choice"),
                ("causal", "causal-lm"), ("gen", "causal-lm")]


def stand_in(models_root, directory, head_name):
    """A folder under models_root standing for a real checkpoint: the tiny head of the same kind
    (by the head's name) plus the test tokenizer, as symlinks."""
    kind = next((tiny for key, tiny in TINY_BY_NAME if key in head_name.lower()), "base")
    target = os.path.join(models_root, directory.lstrip("/"))
    if os.path.exists(target):
        return
    os.makedirs(target)
    for source in (os.path.join(FIXTURES, "norbert4-tiny", kind), os.path.join(FIXTURES, "tokenizer")):
        for name in os.listdir(source):
            link = os.path.join(target, name)
            if not os.path.exists(link):
                os.symlink(os.path.join(source, name), link)


def command_lines():
    """(label, argv after the binary, env, {container path: host path}, config) of every worker container."""
    lines = []
    with open(COMPOSE) as f:
        compose = yaml.safe_load(f)
    for name, service in compose["services"].items():
        image = service.get("image", "")
        if "norbert-worker" not in image and "build" not in service:
            continue
        command = service.get("command", ["serve"])
        command = command if isinstance(command, list) else command.split()
        env = {k: interpolate(str(v)) for k, v in (service.get("environment") or {}).items()}
        paths = {}
        for volume in service.get("volumes", []):
            source, target = interpolate(volume).split(":")[:2]
            paths[target] = os.path.normpath(os.path.join(os.path.dirname(COMPOSE), source))
        lines.append((f"compose service {name}", command, env, paths, None))
    for overlay in OVERLAYS:
        _, docs = render(overlay)
        for workload in (d for d in docs if d["kind"] in ("StatefulSet", "Deployment")):
            args, env, config, container = pod_settings(docs, workload)
            command = container.get("command", []) + args
            if container.get("command"):
                command = command[1:]
            lines.append((f"kubernetes {overlay} {workload['kind']}/{workload['metadata']['name']}", command, env, {}, (workload, container, docs)))
    return lines


def check_config(binary):
    helptext = run([binary, "serve", "--help"]).stdout
    if "--check-config" not in helptext:
        sys.exit(f"{binary} serve --help does not list --check-config: the manifests cannot be checked")
    for label, command, env, paths, k8s in command_lines():
        tmp = tempfile.mkdtemp(prefix="check-config-")
        try:
            models_root = os.path.join(tmp, "root")
            os.makedirs(models_root)
            if k8s:
                workload, container, docs = k8s
                configmaps = {d["metadata"]["name"]: d.get("data", {}) for d in docs if d["kind"] == "ConfigMap"}
                for volume, mount in mounts(workload, container):
                    host = os.path.join(models_root, mount["mountPath"].lstrip("/"))
                    os.makedirs(host, exist_ok=True)
                    for key, value in configmaps.get(volume.get("configMap", {}).get("name"), {}).items():
                        with open(os.path.join(host, key), "w") as f:
                            f.write(value)
                    for item in volume.get("secret", {}).get("items", []):  # secrets: stand-ins
                        path = os.path.join(host, item["path"])
                        if path.endswith((".crt", ".pem")):  # a throwaway self-signed certificate
                            run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj",
                                 "/CN=validate-deploy", "-keyout", os.path.join(tmp, "key.pem"), "-out", path])
                        else:
                            open(path, "w").close()
                    paths[mount["mountPath"]] = host
            # Heads under a mounted path that does not hold them here get a tiny stand-in.
            _, _, config, _ = pod_settings(k8s[2], k8s[0]) if k8s else ([], {}, {}, None)
            heads = flag_values(command, "head") or ([h for h in env.get("NORBERT_WORKER_HEAD", "").split(",") if h]) or config.get("head", [])
            for spec in heads:
                name, _, directory = spec.partition("=")
                if not any(directory.startswith(m) and os.path.exists(directory.replace(m, paths[m], 1)) for m in paths):
                    stand_in(models_root, directory, name)

            targets = dict(paths)
            targets.setdefault("/models", os.path.join(models_root, "models"))
            pattern = re.compile(r"(?<![\w/.-])(" + "|".join(re.escape(m) for m in sorted(targets, key=len, reverse=True))
                                 + r")(?=/|$|,|\")")

            def mapped(text):  # one pass: a replaced path is never mapped again
                return pattern.sub(lambda m: targets[m.group(1)], text)

            for directory in list(paths.values()):
                for root, _, files in os.walk(directory):
                    for name in files:
                        if name.endswith(".json") and root.startswith(tmp):
                            with open(os.path.join(root, name)) as f:
                                text = f.read()
                            with open(os.path.join(root, name), "w") as f:
                                f.write(mapped(text))
            argv = [binary] + [mapped(a) for a in command] + ["--check-config"]
            run_env = {"PATH": os.environ.get("PATH", ""), "HOME": os.environ.get("HOME", "/root")}
            run_env.update({k: mapped(v) for k, v in env.items()})
            out = run(argv, env=run_env, timeout=120)
            if out.returncode != 0:
                fail(f"{label}: serve --check-config exited {out.returncode}:\n{out.stdout[-2000:]}{out.stderr[-2000:]}")
            else:
                ok(f"{label}: serve --check-config")
        finally:
            shutil.rmtree(tmp, ignore_errors=True)


def healthcheck_command():
    with open(os.path.join(DEPLOY, "docker", "Dockerfile")) as f:
        text = f.read().replace("\\\n", " ")
    match = re.search(r"^HEALTHCHECK .*?CMD (\[.*\])\s*$", text, re.M)
    print(json.loads(match.group(1))[2])


def main():
    command = sys.argv[1] if len(sys.argv) > 1 else ""
    if command == "manifests":
        check_manifests()
    elif command == "trigger-selftest":
        trigger_selftest()
    elif command == "metric-names":
        metric_names(sys.argv[2])
    elif command == "check-config":
        check_config(sys.argv[2])
    elif command == "healthcheck-command":
        healthcheck_command()
        return 0
    else:
        print(__doc__)
        return 2
    if failures:
        print(f"validate-deploy {command}: {len(failures)} problem(s)")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
