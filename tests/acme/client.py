#!/usr/bin/python3
"""tests/acme/client.py: an ACME device-attest-01 client for the e2e suite
(tests/e2e/acme_e2e.c), built on Debian's python3-acme (ACME messages,
JWS signing, nonces) and josepy; nothing here comes from this project.

    client.py SCENARIO --directory URL --ca TLS_CA_PEM --code CODE
              --standin BIN --standin-dir DIR --serial S --udid U --out DIR

SCENARIO "happy" runs a whole order as an Apple device does (the ACME
payload with HardwareBound and Attest): newNonce, newAccount, newOrder for
{"type": "permanent-identifier", "value": ClientIdentifier}, the
authorization, an attestation of the device key for the challenge token
from the stand-in Apple attestation CA (build/tests/attest_standin),
the device-attest-01 answer {"attObj": ...}, polling, finalize with a
CSR of the attested P-384 key, and the chain into OUT/chain.pem.

Every other scenario expects one refusal and exits 0 only when the server
answered it with the expected ACME error type (printed as "refused TYPE");
exit 1 means the server did something else (said why on stderr).
python3-acme has no class for device-attest-01, so its answer is posted
with the client's own signed POST (ClientNetwork.post) and a small
JSON-serializable payload class.
"""

import argparse
import json
import subprocess
import sys
import threading
import time

import josepy as jose
import requests
from acme import client as acme_client
from acme import errors as acme_errors
from acme import jws as acme_jws
from acme import messages
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

PERMANENT_IDENTIFIER = messages.IdentifierType("permanent-identifier")


class Payload(jose.JSONDeSerializable):
    """An arbitrary JSON object as a request payload."""

    def __init__(self, obj):
        self.obj = obj

    def to_partial_json(self):
        return self.obj

    @classmethod
    def from_json(cls, jobj):
        return cls(jobj)


class Refused(Exception):
    pass


def fail(msg):
    print("client.py: " + msg, file=sys.stderr)
    sys.exit(1)


def error_type(err):
    """The ACME error type of a messages.Error ("badNonce"), or ''."""
    typ = getattr(err, "typ", "") or ""
    return typ.rsplit(":", 1)[-1]


class Device:
    def __init__(self, args):
        self.args = args
        # The whole order with a P-384 account key (ES384), as a device whose
        # payload asks for P-384 keys; the refusals with P-256 (ES256).
        p384 = args.scenario == "happy"
        self.alg = jose.ES384 if p384 else jose.ES256
        self.account_key = jose.JWKEC(
            key=ec.generate_private_key(ec.SECP384R1() if p384 else ec.SECP256R1()))
        self.device_key = ec.generate_private_key(ec.SECP384R1())
        self.net = acme_client.ClientNetwork(
            self.account_key, alg=self.alg, verify_ssl=args.ca, user_agent="mdm-tests-acme")
        self.directory = acme_client.ClientV2.get_directory(args.directory, self.net)
        self.client = acme_client.ClientV2(self.directory, self.net)
        self.regr = None

    # ---- the steps of an order

    def account(self):
        self.regr = self.client.new_account(
            messages.NewRegistration.from_data(terms_of_service_agreed=True))
        return self.regr

    def order(self, value):
        order = messages.NewOrder(
            identifiers=[messages.Identifier(typ=PERMANENT_IDENTIFIER, value=value)])
        resp = self.client._post(self.directory["newOrder"], order)
        if resp.status_code != 201 or "Location" not in resp.headers:
            fail("newOrder: want 201 with Location, got %d" % resp.status_code)
        body = messages.Order.from_json(resp.json())
        return resp.headers["Location"], body

    def authz(self, url):
        resp = self.client._post_as_get(url)
        return resp.json()

    def attest(self, token, standin_dir=None, udid=None, serial=None):
        pub = self.args.out + "/device-pub.pem"
        with open(pub, "wb") as f:
            f.write(self.device_key.public_key().public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
        cmd = [self.args.standin, "attest", standin_dir or self.args.standin_dir,
               "--pubkey", pub, "--token", token,
               "--serial", serial or self.args.serial, "--udid", udid or self.args.udid,
               "--b64url"]
        out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
        return out.strip()

    def answer(self, chall_url, payload_obj):
        return self.net.post(chall_url, Payload(payload_obj))

    def csr(self, key=None):
        key = key or self.device_key
        req = x509.CertificateSigningRequestBuilder().subject_name(x509.Name([
            x509.NameAttribute(NameOID.COMMON_NAME, "mdm-tests ACME device"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "mdm tests"),
        ])).sign(key, hashes.SHA256())
        return req.public_bytes(serialization.Encoding.DER)

    def finalize(self, finalize_url, csr_der):
        return self.client._post(finalize_url, Payload({"csr": jose.encode_b64jose(csr_der)}))

    def poll_order(self, url):
        deadline = time.time() + 30
        while time.time() < deadline:
            body = self.client._post_as_get(url).json()
            if body["status"] not in ("pending", "processing", "ready"):
                return body
            time.sleep(0.5)
        fail("order %s did not settle" % url)

    # ---- raw JWS, for the JWS refusals

    def nonce(self):
        resp = requests.head(self.directory["newNonce"], verify=self.args.ca)
        if resp.status_code != 200 or "Replay-Nonce" not in resp.headers:
            fail("HEAD newNonce: want 200 with Replay-Nonce, got %d" % resp.status_code)
        if resp.headers.get("Cache-Control") != "no-store":
            fail("HEAD newNonce: Cache-Control is not no-store")
        return resp.headers["Replay-Nonce"]

    def signed(self, url, payload, nonce=None, kid=True, key=None):
        """A flattened JWS (text) as python3-acme makes it, with our choices."""
        nonce = nonce or self.nonce()
        data = json.dumps(payload).encode() if payload is not None else b""
        return acme_jws.JWS.sign(
            data, key=key or self.account_key, alg=self.alg,
            nonce=jose.decode_b64jose(nonce), url=url,
            kid=self.regr.uri if kid else None).json_dumps()

    def post_raw(self, url, body, ctype="application/jose+json"):
        return requests.post(url, data=body, headers={"Content-Type": ctype},
                             verify=self.args.ca)


def expect_problem(resp, want, status=None):
    ctype = resp.headers.get("Content-Type", "")
    if not ctype.startswith("application/problem+json"):
        fail("want a problem document (%s), got %d %s: %s" %
             (want, resp.status_code, ctype, resp.text[:300]))
    doc = resp.json()
    got = doc.get("type", "")
    if got != "urn:ietf:params:acme:error:" + want:
        fail("want %s, got %s (%s)" % (want, got, doc.get("detail")))
    if status is not None and resp.status_code != status:
        fail("want HTTP %d for %s, got %d" % (status, want, resp.status_code))
    if "Replay-Nonce" not in resp.headers:
        fail("the problem %s carries no Replay-Nonce" % want)
    print("refused " + want)


def expect_error(fn, want):
    """Runs fn, which must raise python3-acme's messages.Error of type want."""
    try:
        fn()
    except messages.Error as e:
        got = error_type(e)
        if got != want:
            fail("want %s, got %s (%s)" % (want, got, e.detail))
        print("refused " + want)
        return
    except acme_errors.Error as e:
        fail("want %s, got %r" % (want, e))
    fail("want %s, but the request was accepted" % want)


def up_to_challenge(dev, code):
    dev.account()
    order_url, order = dev.order(code)
    authz = dev.authz(order.authorizations[0])
    if authz["identifier"] != {"type": "permanent-identifier", "value": code}:
        fail("the authorization's identifier is not the order's")
    chall = [c for c in authz["challenges"] if c["type"] == "device-attest-01"]
    if len(chall) != 1 or len(chall[0]["token"]) < 22:
        fail("want one device-attest-01 challenge with a token of 128+ bits")
    return order_url, order, chall[0]


def scenario_happy(dev, a):
    order_url, order, chall = up_to_challenge(dev, a.code)
    att = dev.attest(chall["token"])
    resp = dev.answer(chall["url"], {"attObj": att})
    if resp.json().get("status") != "valid":
        fail("challenge: want valid, got %s" % resp.text[:300])
    if 'rel="up"' not in resp.headers.get("Link", ""):
        fail("challenge: no Link rel=up to its authorization")
    body = dev.client._post_as_get(order_url).json()
    if body["status"] != "ready":
        fail("order: want ready after the challenge, got %s" % body["status"])
    resp = dev.finalize(order.finalize, dev.csr())
    body = resp.json()
    if body.get("status") != "valid" or "certificate" not in body:
        fail("finalize: want valid with a certificate URL, got %s" % resp.text[:300])
    cert = dev.client._post_as_get(body["certificate"])
    if not cert.headers.get("Content-Type", "").startswith("application/pem-certificate-chain"):
        fail("certificate: Content-Type %s" % cert.headers.get("Content-Type"))
    with open(a.out + "/chain.pem", "w") as f:
        f.write(cert.text)
    # The leaf is for the attested key.
    leaf = x509.load_pem_x509_certificate(cert.text.encode())
    want = dev.device_key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    got = leaf.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    if want != got:
        fail("the certificate is not for the attested key")
    with open(a.out + "/leaf.pem", "wb") as f:
        f.write(leaf.public_bytes(serialization.Encoding.PEM))
    # Another account sees nothing of this order.
    other = Device(a)
    other.account()
    resp = other.post_raw(order_url, other.signed(order_url, None))
    expect_problem(resp, "malformed", 404)
    print("issued " + format(leaf.serial_number, "X"))


def scenario_wrong_nonce(dev, a):
    _, _, chall = up_to_challenge(dev, a.code)
    att = dev.attest("another-token-" + chall["token"])
    expect_error(lambda: dev.answer(chall["url"], {"attObj": att}), "badAttestationStatement")


def scenario_other_root(dev, a):
    _, _, chall = up_to_challenge(dev, a.code)
    att = dev.attest(chall["token"], standin_dir=a.other_dir)
    expect_error(lambda: dev.answer(chall["url"], {"attObj": att}), "badAttestationStatement")


def scenario_not_attested_device(dev, a):
    # The code is bound to another UDID (the test made it so), or the device is
    # not one we expect: the attestation is of a.udid.
    _, _, chall = up_to_challenge(dev, a.code)
    att = dev.attest(chall["token"])
    expect_error(lambda: dev.answer(chall["url"], {"attObj": att}), "rejectedIdentifier")


def scenario_csr_key(dev, a):
    _, order, chall = up_to_challenge(dev, a.code)
    att = dev.attest(chall["token"])
    dev.answer(chall["url"], {"attObj": att})
    other = ec.generate_private_key(ec.SECP384R1())
    expect_error(lambda: dev.finalize(order.finalize, dev.csr(other)), "badCSR")


def scenario_expired_order(dev, a):
    # The code lives a.wait - 1 seconds: the order never outlives it.
    _, order, chall = up_to_challenge(dev, a.code)
    att = dev.attest(chall["token"])
    dev.answer(chall["url"], {"attObj": att})
    time.sleep(a.wait)
    expect_error(lambda: dev.finalize(order.finalize, dev.csr()), "orderNotReady")


def scenario_malformed_cbor(dev, a):
    _, _, chall = up_to_challenge(dev, a.code)
    bad = jose.encode_b64jose(b"\xa3\x63fmt\x65apple\x67attStmt")  # truncated map
    expect_error(lambda: dev.answer(chall["url"], {"attObj": bad}), "badAttestationStatement")


def scenario_concurrent_finalize(dev, a):
    """Two ready orders on one code, finalized at the same moment: one certificate."""
    dev.account()
    orders = []
    for _ in range(2):
        _, order = dev.order(a.code)
        chall = [c for c in dev.authz(order.authorizations[0])["challenges"]
                 if c["type"] == "device-attest-01"][0]
        if dev.answer(chall["url"], {"attObj": dev.attest(chall["token"])}).json().get(
                "status") != "valid":
            fail("concurrent-finalize: a challenge was not valid")
        orders.append(order)
    csr = jose.encode_b64jose(dev.csr())
    bodies = [dev.signed(o.finalize, {"csr": csr}) for o in orders]
    results = [None, None]
    barrier = threading.Barrier(2)

    def go(i):
        barrier.wait()
        results[i] = dev.post_raw(orders[i].finalize, bodies[i])

    threads = [threading.Thread(target=go, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    ok = [r for r in results if r.status_code == 200]
    no = [r for r in results if r.status_code != 200]
    if len(ok) != 1:
        fail("concurrent-finalize: want one certificate, got %d answers 200" % len(ok))
    expect_problem(no[0], "unauthorized", 403)


def scenario_spent_code(dev, a):
    dev.account()
    expect_error(lambda: dev.order(a.code), "rejectedIdentifier")


def scenario_oversized(dev, a):
    dev.account()
    url = dev.directory["newOrder"]
    body = dev.signed(url, {"identifiers": [{"type": "permanent-identifier",
                                              "value": "x" * (70 * 1024)}]})
    resp = dev.post_raw(url, body)
    if resp.status_code != 413:
        fail("oversized body: want 413, got %d" % resp.status_code)
    print("refused 413")


def scenario_nonce_reuse(dev, a):
    dev.account()
    url = dev.directory["newOrder"]
    nonce = dev.nonce()
    ok = dev.post_raw(url, dev.signed(url, {"identifiers": [
        {"type": "permanent-identifier", "value": "not-a-code"}]}, nonce=nonce))
    expect_problem(ok, "rejectedIdentifier")
    # Another request with the same nonce.
    again = dev.post_raw(url, dev.signed(url, {"identifiers": [
        {"type": "permanent-identifier", "value": a.code}]}, nonce=nonce))
    expect_problem(again, "badNonce", 400)


def scenario_replay(dev, a):
    dev.account()
    url = dev.directory["newOrder"]
    body = dev.signed(url, {"identifiers": [{"type": "permanent-identifier",
                                              "value": a.code}]})
    first = dev.post_raw(url, body)
    if first.status_code != 201:
        fail("the first newOrder: want 201, got %d %s" % (first.status_code, first.text[:200]))
    expect_problem(dev.post_raw(url, body), "badNonce", 400)


def scenario_bad_signature(dev, a):
    dev.account()
    url = dev.directory["newOrder"]
    jws = json.loads(dev.signed(url, {"identifiers": [
        {"type": "permanent-identifier", "value": a.code}]}))
    sig = bytearray(jose.decode_b64jose(jws["signature"]))
    sig[5] ^= 0x01
    jws["signature"] = jose.encode_b64jose(bytes(sig))
    expect_problem(dev.post_raw(url, json.dumps(jws)), "malformed", 400)


def scenario_url_mismatch(dev, a):
    dev.account()
    url = dev.directory["newOrder"]
    body = dev.signed(dev.directory["newAccount"], {"identifiers": [
        {"type": "permanent-identifier", "value": a.code}]})
    expect_problem(dev.post_raw(url, body), "unauthorized", 401)


def scenario_unknown_kid(dev, a):
    dev.account()
    url = dev.directory["newOrder"]
    base = dev.regr.uri.rsplit("/", 1)[0]

    class Fake:
        uri = base + "/987654321"

    dev.regr = Fake()
    body = dev.signed(url, {"identifiers": [{"type": "permanent-identifier", "value": a.code}]})
    expect_problem(dev.post_raw(url, body), "accountDoesNotExist", 400)


def scenario_jwk_on_new_order(dev, a):
    dev.account()
    url = dev.directory["newOrder"]
    body = dev.signed(url, {"identifiers": [{"type": "permanent-identifier", "value": a.code}]},
                      kid=False)
    expect_problem(dev.post_raw(url, body), "malformed", 400)


def scenario_media_type(dev, a):
    dev.account()
    url = dev.directory["newOrder"]
    body = dev.signed(url, {"identifiers": [{"type": "permanent-identifier", "value": a.code}]})
    expect_problem(dev.post_raw(url, body, ctype="application/json"), "malformed", 415)


def scenario_new_nonce(dev, a):
    resp = requests.get(dev.directory["newNonce"], verify=a.ca)
    if resp.status_code != 204 or "Replay-Nonce" not in resp.headers:
        fail("GET newNonce: want 204 with Replay-Nonce, got %d" % resp.status_code)
    dev.nonce()
    d = requests.get(a.directory, verify=a.ca).json()
    if d.get("meta", {}).get("externalAccountRequired") is not False:
        fail("directory: meta.externalAccountRequired must be false")
    regr = dev.account()
    if a.mode == "fcgid":
        # mod_fcgid (as mod_cgi) turns a 200 with a Location into a 302
        # (the CGI client redirect): the existing-account answer of
        # RFC 8555 section 7.3.1 cannot pass it (docs/ACME.md).
        print("nonces ok (onlyReturnExisting not checked under mod_fcgid)")
        return
    # RFC 8555 section 7.3.1: the existing account, 200 with its Location
    # (python3-acme reports that as ConflictError).  Signed with the jwk again.
    dev.net.account = None
    try:
        dev.client.new_account(messages.NewRegistration.from_data(only_return_existing=True))
        fail("onlyReturnExisting: want the existing account (200), got a new one")
    except acme_errors.ConflictError as e:
        if e.location != regr.uri:
            fail("onlyReturnExisting: not the same account")
    print("nonces ok")


SCENARIOS = {
    "happy": scenario_happy,
    "wrong-nonce": scenario_wrong_nonce,
    "other-root": scenario_other_root,
    "not-attested-device": scenario_not_attested_device,
    "csr-key": scenario_csr_key,
    "expired-order": scenario_expired_order,
    "malformed-cbor": scenario_malformed_cbor,
    "oversized": scenario_oversized,
    "spent-code": scenario_spent_code,
    "concurrent-finalize": scenario_concurrent_finalize,
    "nonce-reuse": scenario_nonce_reuse,
    "replay": scenario_replay,
    "bad-signature": scenario_bad_signature,
    "url-mismatch": scenario_url_mismatch,
    "unknown-kid": scenario_unknown_kid,
    "jwk-on-new-order": scenario_jwk_on_new_order,
    "media-type": scenario_media_type,
    "new-nonce": scenario_new_nonce,
}


def main():
    p = argparse.ArgumentParser()
    p.add_argument("scenario", choices=sorted(SCENARIOS))
    p.add_argument("--directory", required=True)
    p.add_argument("--ca", required=True)
    p.add_argument("--code", default="")
    p.add_argument("--standin", default="")
    p.add_argument("--standin-dir", default="")
    p.add_argument("--other-dir", default="")
    p.add_argument("--serial", default="")
    p.add_argument("--udid", default="")
    p.add_argument("--out", required=True)
    p.add_argument("--wait", type=float, default=0)
    p.add_argument("--mode", default="")
    a = p.parse_args()
    dev = Device(a)
    SCENARIOS[a.scenario](dev, a)


if __name__ == "__main__":
    main()
