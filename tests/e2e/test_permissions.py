"""What the platform writes is its owner's only: the config directory, state, tokens, logs and
extracted projects are closed to other users, while predictors create files with the user's own
umask."""

import os
import stat

from conftest import api_yaml

PREDICTOR = """
import os


class PythonPredictor:
    def __init__(self, config):
        with open(config["out"], "w") as f:
            f.write("made by the predictor")

    def predict(self, payload):
        return {"ok": True}
"""


def mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def test_cluster_files_are_private_and_predictors_keep_the_users_umask(cluster):
    c = cluster
    assert mode(c.config_dir) == 0o700
    assert mode(c.cluster_dir) == 0o700
    for name in ("cli.yaml", "cluster/state.db", "cluster/operator.token",
                 "cluster/logs/operator.log"):
        path = os.path.join(c.config_dir, name)
        assert mode(path) & 0o077 == 0, (name, oct(mode(path)))

    out = os.path.join(c.root, "predictor-output.txt")
    project = c.project("private", {
        "cortex.yaml": api_yaml("private", predictor_extra=f"config:\n  out: {out}\n"),
        "predictor.py": PREDICTOR,
        "secret.txt": "hunter2",
    })
    os.chmod(os.path.join(project, "secret.txt"), 0o600)
    c.deploy_ok(project)
    c.wait_live("private")

    extracted = [os.path.join(d, f) for d, _, files in os.walk(os.path.join(c.cluster_dir,
                                                                           "projects"))
                 for f in files if f == "secret.txt"]
    assert extracted, "the project was not extracted under cluster/projects"
    assert all(mode(p) & 0o077 == 0 for p in extracted), [oct(mode(p)) for p in extracted]

    user_umask = os.umask(0)
    os.umask(user_umask)
    assert mode(out) == 0o666 & ~user_umask, oct(mode(out))
