#!/usr/bin/env python3
"""Checks plists the server emits against Apple's device-management schemas.

    apple_schema.py SCHEMA_DIR profile FILE...   configuration profiles
    apple_schema.py SCHEMA_DIR command FILE...   MDM commands ({Command: {RequestType...}})
    apple_schema.py SCHEMA_DIR payloads FILE...  arrays of payloads (an encrypted profile's
                                                 EncryptedPayloadContent, decrypted)
    apple_schema.py SCHEMA_DIR broken FILE...    each FILE must FAIL (the checker's own test)

SCHEMA_DIR is Apple's device-management repository's mdm/ directory (profiles/,
commands/).  Key by key: required keys present, the type as the schema says
(string, integer, boolean, data, array, dictionary, date, real, any), values
in rangelist, nested subkeys (dictionaries and array items), and no key the
schema does not know (unless it lists ANY).  A profile's top level is checked
against TopLevel.yaml, each payload against CommonPayloadKeys.yaml and its
PayloadType's file.  Every refusal names the schema file and the key path.
Prints one line per file and a final "NAME: N passed, N failed" (tests/run.sh
run_suite); exits 1 when anything failed.
"""
import datetime
import glob
import os
import plistlib
import sys

import yaml

TYPES = {
    "<string>": (str,),
    "<integer>": (int,),
    "<boolean>": (bool,),
    "<data>": (bytes,),
    "<array>": (list,),
    "<dictionary>": (dict,),
    "<date>": (datetime.datetime,),
    "<real>": (float, int),
}


def load(path):
    with open(path, encoding="utf-8") as f:
        return yaml.safe_load(f)


class Schemas:
    def __init__(self, root):
        self.root = root
        prof = os.path.join(root, "profiles")
        self.top = load(os.path.join(prof, "TopLevel.yaml"))
        self.common = load(os.path.join(prof, "CommonPayloadKeys.yaml"))
        self.payloads = {}
        for path in glob.glob(os.path.join(prof, "*.yaml")):
            doc = load(path)
            t = (doc.get("payload") or {}).get("payloadtype")
            if t and t not in ("TopLevel", "CommonPayloadKeys"):
                self.payloads[t] = (os.path.basename(path), doc)
        self.commands = {}
        for path in glob.glob(os.path.join(root, "commands", "*.yaml")):
            doc = load(path)
            t = (doc.get("payload") or {}).get("requesttype")
            if t:
                self.commands[t] = ("commands/" + os.path.basename(path), doc)


def type_ok(value, typ):
    if typ == "<any>" or typ is None:
        return True
    want = TYPES.get(typ)
    if want is None:
        return False
    if typ in ("<integer>", "<real>") and isinstance(value, bool):
        return False
    return isinstance(value, want)


def check_value(value, spec, where, rule, errors):
    typ = spec.get("type")
    if not type_ok(value, typ):
        errors.append("%s: %s is %s, the schema says %s (%s)"
                      % (where, spec.get("key"), type(value).__name__, typ, rule))
        return
    if "rangelist" in spec and value not in spec["rangelist"]:
        errors.append("%s: %r is not one of %r (%s)" % (where, value, spec["rangelist"], rule))
    subs = spec.get("subkeys")
    if not subs:
        return
    if typ == "<dictionary>":
        check_dict(value, subs, where, rule, errors)
    elif typ == "<array>":
        item = subs[0]
        for i, v in enumerate(value):
            check_value(v, item, "%s[%d]" % (where, i), rule, errors)


def check_dict(d, keys, where, rule, errors, optional=()):
    known = {k["key"]: k for k in keys}
    if "ANY" in known:
        for k, v in d.items():
            check_value(v, known["ANY"], "%s.%s" % (where, k), rule, errors)
        return
    for k, spec in known.items():
        if spec.get("presence") == "required" and k not in d and k not in optional:
            errors.append("%s: required key %s is missing (%s)" % (where, k, rule))
    for k, v in d.items():
        if k not in known:
            errors.append("%s: key %s is not in the schema (%s)" % (where, k, rule))
            continue
        check_value(v, known[k], "%s.%s" % (where, k), rule, errors)


def check_profile(s, p, errors):
    if not isinstance(p, dict):
        errors.append("profile: not a dictionary (TopLevel.yaml)")
        return
    # TopLevel.yaml: PayloadContent "isn't needed" when IsEncrypted is true, and
    # EncryptedPayloadContent is "enabled if IsEncrypted is true".
    encrypted = p.get("IsEncrypted") is True
    if "EncryptedPayloadContent" in p and not encrypted:
        errors.append("profile: EncryptedPayloadContent without IsEncrypted true (TopLevel.yaml)")
    optional = ("PayloadContent",) if encrypted else ()
    check_dict(p, s.top["payloadkeys"], "profile", "TopLevel.yaml", errors, optional)
    if p.get("PayloadType") != "Configuration":
        errors.append("profile: PayloadType %r is not Configuration (TopLevel.yaml)"
                      % p.get("PayloadType"))
    for i, pl in enumerate(p.get("PayloadContent") or []):
        check_payload(s, pl, "profile.PayloadContent[%d]" % i, errors)


def check_payloads(s, a, errors):
    if not isinstance(a, list):
        errors.append("payloads: not an array (TopLevel.yaml: PayloadContent)")
        return
    for i, pl in enumerate(a):
        check_payload(s, pl, "payloads[%d]" % i, errors)


def check_payload(s, pl, where, errors):
    if not isinstance(pl, dict):
        errors.append("%s: a payload is not a dictionary (TopLevel.yaml)" % where)
        return
    t = pl.get("PayloadType")
    if t not in s.payloads:
        errors.append("%s: PayloadType %r has no schema here" % (where, t))
        return
    name, doc = s.payloads[t]
    own = doc.get("payloadkeys") or []
    mine = {k["key"] for k in own}
    keys = [k for k in s.common["payloadkeys"] if k["key"] not in mine] + own
    check_dict(pl, keys, "%s(%s)" % (where, t), "CommonPayloadKeys.yaml + " + name, errors)


def check_command(s, c, errors):
    if not isinstance(c, dict) or not isinstance(c.get("Command"), dict):
        errors.append("command: no Command dictionary (MDM protocol)")
        return
    for k in c:
        if k not in ("Command", "CommandUUID"):
            errors.append("command: key %s beside Command and CommandUUID" % k)
    if not isinstance(c.get("CommandUUID"), str):
        errors.append("command: CommandUUID is not a string")
    cmd = c["Command"]
    t = cmd.get("RequestType")
    if t not in s.commands:
        errors.append("command: RequestType %r has no schema here" % t)
        return
    name, doc = s.commands[t]
    body = {k: v for k, v in cmd.items() if k != "RequestType"}
    check_dict(body, doc.get("payloadkeys") or [], "Command(%s)" % t, name, errors)


def main(argv):
    if len(argv) < 4 or argv[2] not in ("profile", "command", "payloads", "broken"):
        sys.stderr.write(__doc__)
        return 2
    s = Schemas(argv[1])
    passed = failed = 0
    for path in argv[3:]:
        errors = []
        try:
            with open(path, "rb") as f:
                p = plistlib.load(f)
        except Exception as e:  # a plist that does not parse is a failure too
            errors.append("not a plist: %s" % e)
            p = None
        if p is not None:
            if argv[2] == "command" or (argv[2] == "broken" and isinstance(p, dict)
                                        and "Command" in p):
                check_command(s, p, errors)
            elif argv[2] == "payloads" or (argv[2] == "broken" and isinstance(p, list)):
                check_payloads(s, p, errors)
            else:
                check_profile(s, p, errors)
        if argv[2] == "broken":
            ok = bool(errors)
            print("%s %s: refused as it must be: %s" % ("ok" if ok else "FAIL", path,
                  errors[0] if errors else "nothing found"))
        else:
            ok = not errors
            print("%s %s" % ("ok" if ok else "FAIL", path))
            for e in errors:
                print("  " + e)
        passed += ok
        failed += not ok
    print("schema (%s): %d passed, %d failed" % (argv[2], passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
