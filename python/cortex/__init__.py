"""The Python client of the platform: deploy and manage APIs from scripts and notebooks.

The surface of Cortex v0.24's ``cortex`` package (docs/python-client.md)::

    import cortex
    c = cortex.client("local")
    c.create_api({"name": "iris", "kind": "RealtimeAPI"}, predictor=PythonPredictor)
"""

import warnings

from cortex import environments
from cortex.client import Client
from cortex.exceptions import CortexException

__all__ = ["Client", "CortexException", "client", "local_client", "cluster_client", "env_list",
           "env_delete"]
__version__ = "0.24.0"


def client(env=None):
    """The client of environment ``env`` (the default environment when None)."""
    return Client(environments.find(env))


def _ignore_credentials(**credentials):
    given = sorted(k for k, v in credentials.items() if v)
    if given:
        warnings.warn(
            f"{', '.join(given)}: ignored; the cluster reads AWS credentials from the "
            "environment of `cortex cluster up` (docs/python-client.md#credentials)",
            stacklevel=3)


def local_client(aws_access_key_id=None, aws_secret_access_key=None, aws_region=None):
    """The client of the local cluster (started with ``cortex cluster up``)."""
    _ignore_credentials(aws_access_key_id=aws_access_key_id,
                        aws_secret_access_key=aws_secret_access_key, aws_region=aws_region)
    return Client(environments.find("local"))


def cluster_client(name, provider, operator_endpoint, aws_access_key_id=None,
                   aws_secret_access_key=None, operator_token=None):
    """Configures environment ``name`` (written to cli.yaml, as `cortex env configure`) and
    returns its client. An existing environment keeps its token unless one is given."""
    _ignore_credentials(aws_access_key_id=aws_access_key_id,
                        aws_secret_access_key=aws_secret_access_key)
    env = {"name": name, "provider": provider, "operator_endpoint": operator_endpoint}
    existing = next((e for e in environments.load()["environments"] if e["name"] == name), {})
    token = operator_token or existing.get("operator_token")
    if token:
        env["operator_token"] = token
    environments.upsert(env)
    return Client(env)


def env_list():
    """The configured environments: [{"name", "provider", "operator_endpoint", "default"}]
    (tokens left out)."""
    config = environments.load()
    return [{"name": e["name"], "provider": e.get("provider", "local"),
             "operator_endpoint": e.get("operator_endpoint", ""),
             "default": e["name"] == config["default_environment"]}
            for e in config["environments"]]


def env_delete(name):
    environments.delete(name)
