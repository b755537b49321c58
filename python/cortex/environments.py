"""The CLI's environments in $CORTEX_CLI_CONFIG_DIR/cli.yaml (default ~/.cortex/cli.yaml).

The same file the ``cortex`` CLI reads and writes (docs/cli.md#environments)::

    default_environment: local
    environments:
      - {name: local, provider: local, operator_endpoint: http://127.0.0.1:8890,
         operator_token: ...}
"""

import os
import tempfile

import yaml

from cortex.exceptions import CortexException

PROVIDERS = ("local", "kubernetes")
_FIELDS = ("name", "provider", "operator_endpoint", "operator_token")


def config_dir():
    return os.environ.get("CORTEX_CLI_CONFIG_DIR") or os.path.join(os.path.expanduser("~"),
                                                                      ".cortex")


def config_path():
    return os.path.join(config_dir(), "cli.yaml")


def load():
    """The parsed cli.yaml as {"default_environment", "environments": [dict]}."""
    path = config_path()
    try:
        with open(path) as f:
            # Every scalar a string, as the CLI reads it: an unquoted token 0777 stays "0777".
            data = yaml.load(f, Loader=yaml.BaseLoader) or {}
    except FileNotFoundError:
        data = {}
    except (OSError, yaml.YAMLError) as e:
        raise CortexException(f"{path}: {e}") from None
    if not isinstance(data, dict):
        raise CortexException(f"{path}: must be a map")
    envs = data.get("environments") or []
    if not isinstance(envs, list) or not all(isinstance(e, dict) and "name" in e for e in envs):
        raise CortexException(f"{path}: environments: must be a list of maps with a name")
    return {"default_environment": data.get("default_environment") or "local",
            "environments": [{k: str(v) for k, v in e.items() if k in _FIELDS and v is not None}
                             for e in envs]}


def save(config):
    """Writes cli.yaml atomically, in a directory only its owner can read (it holds tokens)."""
    directory = config_dir()
    try:
        os.makedirs(directory, exist_ok=True)
        os.chmod(directory, 0o700)  # tokens live here; as the CLI, a failure here is not fatal
    except PermissionError:
        pass
    text = yaml.safe_dump({"default_environment": config["default_environment"],
                           "environments": config["environments"]}, sort_keys=False)
    try:
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=".cli.yaml.")  # created 0600
    except OSError as e:
        raise CortexException(f"{config_path()}: {e}") from None
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.replace(tmp, config_path())
    except BaseException as e:
        os.unlink(tmp)
        if isinstance(e, OSError):
            raise CortexException(f"{config_path()}: {e}") from None
        raise


def find(name):
    """The environment called ``name`` (the default one when None)."""
    config = load()
    wanted = name or config["default_environment"]
    for env in config["environments"]:
        if env["name"] == wanted:
            return env
    if wanted == "local":
        raise CortexException("the local environment is not configured yet; start the local "
                              "cluster with `cortex cluster up`")
    raise CortexException(f"environment {wanted} is not configured (see `cortex env list`)")


def check(env):
    """The checks of `cortex env configure`, with its messages."""
    name, provider = env.get("name", ""), env.get("provider", "")
    if not name:
        raise CortexException("environment name must not be empty")
    if provider not in PROVIDERS:
        raise CortexException(
            f"provider {provider} is not supported (choose local or kubernetes)")
    for reserved in PROVIDERS:
        if name == reserved and provider != reserved:
            raise CortexException(
                f"the {reserved} environment must use the {reserved} provider")
    endpoint = env.get("operator_endpoint", "")
    if not endpoint.startswith(("http://", "https://")):
        raise CortexException(
            f'operator endpoint "{endpoint}" must start with http:// or https://')


def upsert(env):
    """Adds or replaces ``env``; it becomes the default if the default does not exist."""
    check(env)
    config = load()
    names = [e["name"] for e in config["environments"]]
    if env["name"] in names:  # in place, as the CLI does
        config["environments"][names.index(env["name"])] = env
    else:
        config["environments"].append(env)
    if not any(e["name"] == config["default_environment"] for e in config["environments"]):
        config["default_environment"] = env["name"]
    save(config)


def delete(name):
    config = load()
    if not any(e["name"] == name for e in config["environments"]):
        raise CortexException(f"environment {name} is not configured")
    config["environments"] = [e for e in config["environments"] if e["name"] != name]
    if config["default_environment"] == name:
        config["default_environment"] = (config["environments"][0]["name"]
                                         if config["environments"] else "local")
    save(config)
