#!/usr/bin/python3
"""Prints SigV4 test vectors for src/s3/s3_client_test.cc, computed by botocore's S3SigV4Auth.

botocore (Debian: python3-botocore) is the reference signer: each request below is signed at a
fixed timestamp and the canonical request, string to sign and Authorization header are printed
as C++ initialisers. Paste the output between the GENERATED markers in s3_client_test.cc;
tests/s3/test_sigv4_botocore.py regenerates it and fails when the two differ.

    /usr/bin/python3 src/s3/testdata/sigv4_vectors.py
"""
import datetime
import hashlib
from unittest import mock
from urllib.parse import quote, unquote

from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

AMZ_DATE = "20130524T000000Z"
FIXED_NOW = datetime.datetime(2013, 5, 24, 0, 0, 0)
# The keys from AWS's own SigV4 examples.
ACCESS_KEY = "AKIAIOSFODNN7EXAMPLE"
SECRET_KEY = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"


def object_url(endpoint, bucket, key):
    # What botocore's REST serializer does with a greedy {Key+} label, and what our client does.
    return f"{endpoint}/{bucket}/{quote(key, safe='/~')}"


def query(params):
    return "&".join(f"{quote(k, safe='-_.~')}={quote(v, safe='-_.~')}" for k, v in params)


# name, method, url (as sent, percent-encoded), extra headers, payload, session token, region
REQUESTS = [
    ("get_object", "GET",
     object_url("https://s3.amazonaws.com", "examplebucket", "models/resnet50/model.onnx"),
     [], b"", "", "us-east-1"),
    ("list_with_encoded_query", "GET",
     "https://s3.eu-west-1.amazonaws.com/my-bucket?" + query([
         ("list-type", "2"),
         ("prefix", "models/v1 (final)+/é"),
         ("continuation-token", "1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM="),
         ("max-keys", "7"),
     ]),
     [], b"", "", "eu-west-1"),
    ("put_with_body", "PUT",
     object_url("http://127.0.0.1:4568", "bucket", "uploads/predictor.py"),
     [("Content-Type", "text/x-python"), ("X-Amz-Meta-Owner", "  data   science team ")],
     b"def predict(payload):\n    return {'ok': True}\n", "", "us-east-1"),
    ("session_token", "GET",
     object_url("https://s3.us-west-2.amazonaws.com", "team-models", "iris/model.pkl"),
     [], b"",
     "FwoGZXIvYXdzEBYaDHhBTk9UQVJFQUxUT0tFTiJ/sessiontoken+example==", "us-west-2"),
    ("key_with_spaces_and_unicode", "GET",
     object_url("http://localhost:9000", "data", "my folder/modèle ü+v2 #1~final.bin"),
     [], b"", "", "ap-southeast-2"),
]


def sign(method, url, headers, payload, token, region):
    base, _, qs = url.partition("?")
    params = []
    if qs:
        for pair in qs.split("&"):
            k, _, v = pair.partition("=")
            params.append((unquote(k), unquote(v)))
    request = AWSRequest(method=method, url=base, headers=dict(headers), data=payload,
                         params=params or None)
    auth = S3SigV4Auth(Credentials(ACCESS_KEY, SECRET_KEY, token or None), "s3", region)
    # add_auth's own steps, with the clock fixed, so the intermediate strings can be read.
    request.context["timestamp"] = AMZ_DATE
    auth._modify_request_before_signing(request)
    canonical = auth.canonical_request(request)
    string_to_sign = auth.string_to_sign(request, canonical)
    signature = auth.signature(string_to_sign, request)
    auth._inject_signature_to_request(request, signature)
    authorization = request.headers["Authorization"]

    # The public path must agree with the steps above.
    check = AWSRequest(method=method, url=base, headers=dict(headers), data=payload,
                       params=params or None)
    with mock.patch("botocore.auth.datetime.datetime") as clock:
        clock.utcnow.return_value = FIXED_NOW
        clock.now.return_value = FIXED_NOW.replace(tzinfo=datetime.timezone.utc)
        auth.add_auth(check)
    assert check.headers["Authorization"] == authorization, "add_auth disagrees"
    assert request.headers["X-Amz-Content-SHA256"] == hashlib.sha256(payload).hexdigest()
    return canonical, string_to_sign, authorization


def cpp_string(s):
    if "\n" in s or '"' in s or "\\" in s:
        assert ")sig\"" not in s
        return 'R"sig(' + s + ')sig"'
    return '"' + s + '"'


def main():
    print(f"// AMZ_DATE {AMZ_DATE}, access key {ACCESS_KEY}, secret {SECRET_KEY}")
    for name, method, url, headers, payload, token, region in REQUESTS:
        canonical, string_to_sign, authorization = sign(method, url, headers, payload, token,
                                                       region)
        header_list = ", ".join("{" + cpp_string(k) + ", " + cpp_string(v) + "}"
                                for k, v in headers)
        print("{")
        print(f"    {cpp_string(name)},")
        print(f"    {cpp_string(method)},")
        print(f"    {cpp_string(url)},")
        print(f"    {{{header_list}}},")
        print(f"    {cpp_string(payload.decode())},")
        print(f"    {cpp_string(token)},")
        print(f"    {cpp_string(region)},")
        print(f"    {cpp_string(canonical)},")
        print(f"    {cpp_string(string_to_sign)},")
        print(f"    {cpp_string(authorization)},")
        print("},")


if __name__ == "__main__":
    main()
