"""CLI environments (spec §14, §15): env configure / list / default / delete, and `cortex get`
across every configured environment (env column, -e, JSON [{env_name, apis, error}], unreachable
environments)."""

import json
import os
import re

from conftest import api_yaml, free_port

PREDICTOR = """
class PythonPredictor:
    def __init__(self, config):
        self.owner = config["owner"]

    def predict(self, payload):
        return {"owner": self.owner}
"""


def project(name, owner):
    return {"cortex.yaml": api_yaml(name, predictor_extra=f"config:\n  owner: {owner}"),
            "predictor.py": PREDICTOR}


def read_token(cluster):
    with open(os.path.join(cluster.cluster_dir, "operator.token")) as f:
        return f.read().strip()


def rows(text):
    return [re.split(r"\s{2,}", line.strip()) for line in text.splitlines() if line.strip()]


def env_list(c):
    """`env list -o json`, v0.24's array, as {"default_environment", "environments"}."""
    envs = json.loads(c.cli_ok("env", "list", "-o", "json"))
    assert isinstance(envs, list), envs
    defaults = [e["name"] for e in envs if e["default"]]
    assert len(defaults) <= 1, envs
    return {"default_environment": defaults[0] if defaults else None, "environments": envs}


def env_blocks(text):
    """`env list`'s key-value blocks as [[name, provider, endpoint]], checking that each block's
    values start at one column, as v0.24 prints them."""
    blocks = []
    for chunk in text.strip("\n").split("\n\n"):
        lines = chunk.splitlines()
        assert [line.split(":", 1)[0] for line in lines] == ["name", "provider",
                                                             "operator endpoint"], chunk
        assert len({len(re.match(r"^[a-z ]+:\s+", line).group(0)) for line in lines}) == 1, chunk
        blocks.append([line.split(":", 1)[1].strip() for line in lines])
    return blocks


def dead_endpoint():
    """An operator URL where nothing listens."""
    return f"http://127.0.0.1:{free_port()}"


def test_env_configure_list_default_delete(cluster):
    local_url = f"http://127.0.0.1:{cluster.operator_port}"

    listed = env_list(cluster)
    assert listed["default_environment"] == "local", listed
    assert [e["name"] for e in listed["environments"]] == ["local"], listed
    assert listed["environments"][0]["operator_endpoint"] == local_url, listed
    assert listed["environments"][0]["provider"] == "local", listed
    out = cluster.cli_ok("env", "list")
    assert env_blocks(out) == [["local (default)", "local", local_url]], out
    assert out.startswith("name:              local (default)\nprovider:          local\n"), out

    staging_url = dead_endpoint()
    out = cluster.cli_ok("env", "configure", "staging", "-p", "local", "-o", staging_url,
                         "-t", "staging-token")
    assert "configured staging environment" in out, out
    listed = env_list(cluster)
    assert listed["default_environment"] == "local", listed
    by_name = {e["name"]: e for e in listed["environments"]}
    assert set(by_name) == {"local", "staging"}, listed
    assert by_name["staging"]["operator_endpoint"] == staging_url
    assert by_name["staging"]["provider"] == "local"
    assert by_name["staging"]["default"] is False and by_name["local"]["default"] is True
    out = cluster.cli_ok("env", "list")
    assert ["staging", "local", staging_url] in env_blocks(out), out

    # Reconfiguring an env changes it in place.
    staging_url = dead_endpoint()
    cluster.cli_ok("env", "configure", "staging", "-p", "local", "-o", staging_url, "-t", "t2")
    listed = env_list(cluster)
    assert [e["operator_endpoint"] for e in listed["environments"]
            if e["name"] == "staging"] == [staging_url], listed

    # The default decides where commands without -e go.
    out = cluster.cli_ok("env", "default", "staging")
    assert out.strip() == "set staging as the default environment", out  # v0.24's words
    listed = env_list(cluster)
    assert listed["default_environment"] == "staging", listed
    assert ["staging (default)", "local", staging_url] in env_blocks(
        cluster.cli_ok("env", "list"))
    rc, out, err = cluster.cli("get", "anything", timeout=20)
    assert rc != 0, out  # staging is unreachable
    rc, out, err = cluster.cli("get", "anything", "-e", "local", timeout=20)
    assert rc != 0 and "anything is not deployed" in err, err  # reached local this time

    # Bad environments are refused and change nothing.
    rc, _, err = cluster.cli("env", "configure", "bad", "-p", "local", "-o", "127.0.0.1:1",
                             "-t", "x")
    assert rc != 0 and "http://" in err, err
    rc, _, err = cluster.cli("env", "configure", "local", "-p", "kubernetes", "-o", local_url,
                             "-t", "x")
    assert rc != 0 and "local" in err, err
    rc, _, err = cluster.cli("env", "default", "nope")
    assert rc != 0 and "nope" in err, err
    rc, _, err = cluster.cli("env", "delete", "nope")
    assert rc != 0 and "nope" in err, err

    # Deleting the default env falls back to another one.
    cluster.cli_ok("env", "default", "local")
    out = cluster.cli_ok("env", "delete", "staging")
    assert "staging" in out, out
    listed = env_list(cluster)
    assert [e["name"] for e in listed["environments"]] == ["local"], listed
    assert listed["default_environment"] == "local", listed
    assert cluster.cli("get", "anything")[2].strip().endswith("anything is not deployed")


def test_get_lists_every_environment(cluster_factory):
    a = cluster_factory()
    b = cluster_factory()
    b_url = f"http://127.0.0.1:{b.operator_port}"
    out = a.cli_ok("env", "configure", "b", "-p", "local", "-o", b_url, "-t", read_token(b))
    assert "configured b environment" in out, out

    a.deploy_ok(project("api-a", "a"))
    a.deploy_ok(project("api-shared", "a"))
    # Deploy to b from a's config dir (-e b), and from b's own.
    a.deploy_ok(a.project("only-b", project("api-b", "b")), "-e", "b")
    b.deploy_ok(project("api-shared", "b"))
    a.wait_live("api-a")
    a.wait_live("api-shared")
    b.wait_live("api-b")
    b.wait_live("api-shared")
    assert b.post("api-b", {}).json() == {"owner": "b"}

    # Without -e: every env, with the env column.
    out = a.cli_ok("get")
    table = rows(out)
    assert table[0][:3] == ["env", "realtime api", "status"], out
    listed = sorted((r[0], r[1]) for r in table[1:])
    assert listed == [("b", "api-b"), ("b", "api-shared"), ("local", "api-a"),
                      ("local", "api-shared")], out
    assert all("live" in r for r in table[1:]), out

    data = json.loads(a.cli_ok("get", "-o", "json"))
    assert [e["env_name"] for e in data] == ["local", "b"], data
    assert all(e["error"] is None for e in data), data
    assert sorted(x["spec"]["name"] for x in data[0]["apis"]) == ["api-a", "api-shared"]
    assert sorted(x["spec"]["name"] for x in data[1]["apis"]) == ["api-b", "api-shared"]
    endpoints = {x["spec"]["name"]: x["endpoint"] for x in data[1]["apis"]}
    assert endpoints["api-b"] == f"{b.gateway_url}/api-b", endpoints

    # -e selects one env; its table has no env column.
    out = a.cli_ok("get", "-e", "b")
    table = rows(out)
    assert table[0][:2] == ["realtime api", "status"], out
    assert sorted(r[0] for r in table[1:]) == ["api-b", "api-shared"], out
    data = json.loads(a.cli_ok("get", "-e", "b", "-o", "json"))
    assert [e["env_name"] for e in data] == ["b"], data

    # One API: the default env (local) unless -e says otherwise.
    rc, _, err = a.cli("get", "api-b")
    assert rc != 0 and "api-b is not deployed" in err, err
    assert a.cli_json("get", "api-b", "-e", "b")[0]["spec"]["name"] == "api-b"

    # b goes away: its APIs are not listed, a note says why, and local is still listed.
    rc, _, err = b.down()
    assert rc == 0, err
    rc, out, err = a.cli("get", timeout=20)
    assert rc == 0, (out, err)
    assert "api-a" in out and "api-b" not in out, out
    assert "unable to detect apis from the b environment" in out, out
    data = json.loads(a.cli_ok("get", "-o", "json", timeout=20))
    assert [e["env_name"] for e in data] == ["local", "b"], data
    assert data[1]["apis"] == [] and isinstance(data[1]["error"], str) and data[1]["error"], data
    assert data[0]["error"] is None
    rc, out, err = a.cli("get", "-e", "b", timeout=20)
    assert rc != 0, out


def test_only_environment_unreachable_is_an_error(cluster_factory):
    c = cluster_factory(start=False)
    c.cli_ok("env", "configure", "remote", "-p", "local", "-o", dead_endpoint(), "-t", "x")
    listed = env_list(c)
    assert listed["default_environment"] == "remote", listed

    rc, out, err = c.cli("get", timeout=20)
    assert rc != 0, out
    assert "no apis are deployed" not in out, out
    assert err.strip(), err

    rc, out, err = c.cli("get", "-o", "json", timeout=20)
    assert rc != 0, out
