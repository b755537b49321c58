"""A notebook in script form: deploy a predictor class from Python, ask it, and clean up.

Run it with the local cluster up (`cortex cluster up`):

    /usr/bin/python3 examples/python-client/notebook.py

Each block below is what a notebook cell would hold.
"""

# --- cell 1: a predictor, defined right here (in __main__, as in a notebook) ---------------------
import json
import urllib.request

import cortex

VOWELS = "aeiou"


class PythonPredictor:
    def __init__(self, config):
        self.greeting = config.get("greeting", "hello")

    def predict(self, payload):
        text = payload["text"]
        return {"greeting": f"{self.greeting}, {text}",
                "vowels": sum(ch in VOWELS for ch in text.lower())}


# --- cell 2: deploy it and wait until it is live (its logs are printed meanwhile) ----------------
client = cortex.client()  # the default environment: `local` after `cortex cluster up`
result = client.create_api(
    {"name": "greeter", "kind": "RealtimeAPI", "predictor": {"config": {"greeting": "hi"}}},
    predictor=PythonPredictor, wait=True)
print(result["message"])
endpoint = result["api"]["endpoint"]

# --- cell 3: ask it ------------------------------------------------------------------------------
request = urllib.request.Request(endpoint, data=json.dumps({"text": "Cortex"}).encode(),
                                 headers={"Content-Type": "application/json"})
with urllib.request.urlopen(request, timeout=30) as response:
    print(json.loads(response.read()))  # {'greeting': 'hi, Cortex', 'vowels': 2}

# --- cell 4: look at it, then delete it ----------------------------------------------------------
api = client.get_api("greeter")
print(api["status"]["status"], api["endpoint"])
print(client.delete_api("greeter"))
