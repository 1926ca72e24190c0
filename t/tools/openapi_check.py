#!/usr/bin/python3
"""openapi_check.py - keeps docs/openapi.yaml true to the code.

Usage (run from anywhere; --src defaults to the tree holding this file):

  openapi_check.py [--src DIR] [--spec FILE] structure
      every $ref resolves, every operation has responses, every schema is
      a valid JSON Schema (draft 4, as OpenAPI 3.0 uses), path parameters
      match the path templates, operationIds are unique.
  openapi_check.py [--src DIR] [--spec FILE] routes
      the (method, path) pairs the modules register (bl_router_add calls and
      {"METHOD", "/pattern", handler} route tables in modules/*/*.c, ":param"
      written "{param}") plus core's fixed routes, against the spec's paths.
  openapi_check.py [--src DIR] [--spec FILE] codes
      every error code the modules use (BL_ERR_* macros and quoted
      UPPER_SNAKE codes handed to bl_send_error and friends) is in the
      ErrorEnvelope's error.code enum.
  openapi_check.py [--spec FILE] validate METHOD PATH STATUS [CONTENT_TYPE]
      validates the JSON body on stdin against the documented response of
      METHOD PATH (a spec path template, with or without the server prefix)
      for STATUS (exact, then 4XX-style, then default).
  openapi_check.py [--spec FILE] schema NAME
      validates the JSON body on stdin against components/schemas/NAME.
  openapi_check.py [--spec FILE] response NAME [CONTENT_TYPE]
      validates the JSON body on stdin against components/responses/NAME
      (for answers of routes the spec does not list, e.g. an unknown path).
  openapi_check.py [--spec FILE] conformance CAPTURE_FILE
      every answer recorded by t/lib/BL/Test.pm's bl_request (JSON lines:
      method, path, status, content_type, body) against the documented
      response of its route: the status must be documented and a JSON
      body must match. Paths the spec does not list are left out.
  openapi_check.py [--src DIR] [--spec FILE] all
      structure, routes and codes in one run.

Exit status 0 when everything holds, 1 with one line per problem otherwise,
2 for a usage error. Needs python3-yaml and python3-jsonschema (Debian).
"""

import argparse
import copy
import json
import os
import re
import sys
import warnings

try:
    import yaml
    import jsonschema
except ImportError as e:  # pragma: no cover - environment problem
    sys.stderr.write("openapi_check: %s (Debian packages python3-yaml and "
                     "python3-jsonschema)\n" % e)
    sys.exit(2)

HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")

# Routes core answers itself (handlers bound by <Location> in its conf), each
# counted only while the literal that implements it is in the sources.
FIXED_ROUTES = (
    ("GET", "/health", '"beautiful-health"'),
    ("GET", "/health/ready", '"/health/ready"'),
    ("GET", "/metrics", '"beautiful-metrics"'),
    ("GET", "/.well-known/jwks.json", '"/.well-known/jwks.json"'),
    ("GET", "/api/v1/openapi.json", '"/api/v1/openapi.json"'),
    ("GET", "/api/v1/openapi.yaml", '"/api/v1/openapi.yaml"'),
)

UPPER_SNAKE = r"[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+|[A-Z]{4,}"


def default_src():
    return os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                         "..", ".."))


class Problems(object):
    def __init__(self):
        self.items = []

    def add(self, msg):
        self.items.append(msg)

    def finish(self, what, ok_note=""):
        for p in self.items:
            print("not ok: %s" % p)
        if self.items:
            print("%s: %d problem(s)" % (what, len(self.items)))
            return 1
        print("%s: ok%s" % (what, ok_note))
        return 0


def load_spec(path):
    with open(path, "rb") as f:
        spec = yaml.safe_load(f)
    if not isinstance(spec, dict):
        raise ValueError("%s is not a YAML mapping" % path)
    return spec


# ---------------------------------------------------------------- refs and schemas

def pointer_get(doc, ref):
    """Resolves a local JSON pointer ("#/components/schemas/X")."""
    if not ref.startswith("#/"):
        raise KeyError("only local references are used here: %s" % ref)
    node = doc
    for part in ref[2:].split("/"):
        part = part.replace("~1", "/").replace("~0", "~")
        if isinstance(node, list):
            node = node[int(part)]
        elif isinstance(node, dict) and part in node:
            node = node[part]
        else:
            raise KeyError(ref)
    return node


def walk(node, where="#"):
    """Yields (json pointer, node) for every dict in the document."""
    if isinstance(node, dict):
        yield where, node
        for k, v in node.items():
            for x in walk(v, "%s/%s" % (where, str(k).replace("~", "~0").replace("/", "~1"))):
                yield x
    elif isinstance(node, list):
        for i, v in enumerate(node):
            for x in walk(v, "%s/%d" % (where, i)):
                yield x


def deref(spec, node):
    seen = 0
    while isinstance(node, dict) and "$ref" in node:
        node = pointer_get(spec, node["$ref"])
        seen += 1
        if seen > 32:
            raise KeyError("reference loop")
    return node


# OpenAPI 3.0 schema keywords that JSON Schema draft 4 does not know; they
# are dropped (after use) before a schema is handed to jsonschema.
OPENAPI_ONLY = ("nullable", "discriminator", "readOnly", "writeOnly", "xml",
                "externalDocs", "example", "deprecated")


def to_json_schema(node):
    """Translates an OpenAPI 3.0 schema object to JSON Schema draft 4:
    nullable becomes a "null" type (or an anyOf with null), OpenAPI-only
    keywords and x- extensions are dropped. $refs are kept."""
    if isinstance(node, list):
        return [to_json_schema(v) for v in node]
    if not isinstance(node, dict):
        return node
    out = {}
    for k, v in node.items():
        if k in OPENAPI_ONLY or (isinstance(k, str) and k.startswith("x-")):
            continue
        if k in ("properties", "patternProperties", "definitions"):
            out[k] = dict((name, to_json_schema(s)) for name, s in v.items())
        elif k in ("items", "additionalProperties", "not", "allOf", "anyOf", "oneOf"):
            out[k] = to_json_schema(v)
        else:
            out[k] = copy.deepcopy(v)
    if node.get("nullable") is True:
        t = out.get("type")
        if any(k in out for k in ("allOf", "anyOf", "oneOf")):
            # null must pass the composition too, not just the type
            out = {"anyOf": [out, {"type": "null"}]}
        elif isinstance(t, str):
            out["type"] = [t, "null"]
            if "enum" in out and None not in out["enum"]:
                out["enum"] = list(out["enum"]) + [None]
        elif t is None:
            out = {"anyOf": [out, {"type": "null"}]}
    return out


def translate_document(spec):
    """The whole spec with every schema translated, so $refs made against it
    resolve to JSON Schema."""
    doc = copy.deepcopy(spec)
    comps = doc.get("components", {})
    if "schemas" in comps:
        comps["schemas"] = dict((k, to_json_schema(v)) for k, v in comps["schemas"].items())
    for _, node in list(walk(doc)):
        for key in ("schema",):
            if key in node and isinstance(node[key], dict) and node is not comps:
                node[key] = to_json_schema(node[key])
    return doc


RFC3339 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$")
DATE = re.compile(r"^\d{4}-\d\d-\d\d$")
UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-"
                  r"[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def format_checker():
    fc = jsonschema.FormatChecker(())
    checks = {"date-time": RFC3339, "date": DATE, "uuid": UUID, "email": EMAIL}
    for name, rx in checks.items():
        fc.checks(name)(lambda v, rx=rx: not isinstance(v, str) or bool(rx.match(v)))
    return fc


def validator_for(doc, schema):
    # RefResolver is what Debian 12's jsonschema (4.10) has; newer ones warn.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        resolver = jsonschema.RefResolver("", doc)
    return jsonschema.Draft4Validator(schema, resolver=resolver,
                                      format_checker=format_checker())


# ---------------------------------------------------------------- structure

def operations(spec):
    for path, item in (spec.get("paths") or {}).items():
        if not isinstance(item, dict):
            continue
        for m in HTTP_METHODS:
            if m in item:
                yield path, m, item, item[m]


def check_structure(spec):
    pr = Problems()
    if not str(spec.get("openapi", "")).startswith("3.0"):
        pr.add("openapi must be 3.0.x, not %r" % spec.get("openapi"))
    for key in ("info", "paths", "components"):
        if key not in spec:
            pr.add("top-level %s is missing" % key)
    # every $ref resolves
    for where, node in walk(spec):
        ref = node.get("$ref")
        if isinstance(ref, str):
            try:
                pointer_get(spec, ref)
            except (KeyError, ValueError, IndexError):
                pr.add("%s: $ref %s does not resolve" % (where, ref))
    op_ids = {}
    for path, method, item, op in operations(spec):
        name = "%s %s" % (method.upper(), path)
        if not isinstance(op, dict):
            pr.add("%s: not an operation object" % name)
            continue
        responses = op.get("responses")
        if not isinstance(responses, dict) or not responses:
            pr.add("%s: no responses" % name)
        else:
            for status in responses:
                if not re.match(r"^([1-5][0-9][0-9]|[1-5]XX|default)$", str(status)):
                    pr.add("%s: bad response status %r" % (name, status))
            if not any(str(s).startswith("2") for s in responses):
                pr.add("%s: no 2xx response" % name)
        oid = op.get("operationId")
        if not oid:
            pr.add("%s: no operationId" % name)
        elif oid in op_ids:
            pr.add("%s: operationId %s also used by %s" % (name, oid, op_ids[oid]))
        else:
            op_ids[oid] = name
        # path parameters: each {x} declared as in: path, required; no extra
        declared = set()
        for p in (item.get("parameters") or []) + (op.get("parameters") or []):
            try:
                p = deref(spec, p)
            except KeyError:
                continue
            if p.get("in") == "path":
                declared.add(p.get("name"))
                if p.get("required") is not True:
                    pr.add("%s: path parameter %s must be required" % (name, p.get("name")))
        in_template = set(re.findall(r"\{([^}]+)\}", path))
        for x in sorted(in_template - declared):
            pr.add("%s: path parameter {%s} not declared" % (name, x))
        for x in sorted(declared - in_template):
            pr.add("%s: parameter %s is not in the path" % (name, x))
    # every schema is valid draft 4 once translated, and refs resolve in it
    doc = translate_document(spec)
    meta = jsonschema.Draft4Validator.META_SCHEMA
    for where, node in walk(doc):
        for key in ("schema",):
            if key in node and isinstance(node[key], dict):
                check_one_schema(pr, doc, meta, "%s/%s" % (where, key), node[key])
    for name, s in (doc.get("components", {}).get("schemas") or {}).items():
        check_one_schema(pr, doc, meta, "#/components/schemas/%s" % name, s)
    return pr.finish("structure", " (%d operations)" % len(op_ids))


def check_one_schema(pr, doc, meta, where, schema):
    try:
        jsonschema.Draft4Validator(meta).validate(schema)
    except jsonschema.ValidationError as e:
        pr.add("%s: not a valid JSON Schema: %s" % (where, e.message))
        return
    # "required" names that no property declares, where properties are closed
    props = schema.get("properties")
    if isinstance(props, dict) and schema.get("additionalProperties") is False:
        for r in schema.get("required", []):
            if r not in props:
                pr.add("%s: required %s is not among the properties" % (where, r))


# ---------------------------------------------------------------- sources

def strip_comments(text):
    text = re.sub(r"/\*.*?\*/", lambda m: "\n" * m.group(0).count("\n"), text, flags=re.S)
    return re.sub(r"//[^\n]*", "", text)


def module_sources(src):
    base = os.path.join(src, "modules")
    if not os.path.isdir(base):
        raise IOError("no modules/ under %s" % src)
    out = []
    for d in sorted(os.listdir(base)):
        if d == "common":         # pure helpers: no routes, no responses
            continue
        dd = os.path.join(base, d)
        if not os.path.isdir(dd):
            continue
        for f in sorted(os.listdir(dd)):
            if f.endswith((".c", ".h")):
                with open(os.path.join(dd, f), encoding="utf-8", errors="replace") as fh:
                    out.append(("modules/%s/%s" % (d, f), fh.read()))
    return out


def code_routes(src):
    """{(METHOD, full path): "file"} registered by the modules."""
    routes = {}
    sources = module_sources(src)
    lit = r'"((?:[^"\\]|\\.)*)"'
    for name, raw in sources:
        if not name.endswith(".c"):
            continue
        text = strip_comments(raw)
        found = re.findall(r"bl_router_add\s*\(\s*[^,]+,\s*" + lit + r"\s*,\s*" + lit, text)
        found += re.findall(r"\{\s*\"(GET|POST|PUT|PATCH|DELETE)\"\s*,\s*\"(/[^\"]*)\"\s*,", text)
        for method, pattern in found:
            path = "/api/v1" + re.sub(r":([A-Za-z_][A-Za-z0-9_]*)", r"{\1}", pattern)
            routes[(method.upper(), path)] = name
    alltext = "\n".join(strip_comments(t) for _, t in sources)
    for method, path, marker in FIXED_ROUTES:
        if marker in alltext:
            routes.setdefault((method, path), "fixed")
    return routes


def spec_routes(spec):
    """{(METHOD, full path)} documented, each path under its server url."""
    default = "/"
    servers = spec.get("servers") or [{"url": "/"}]
    default = servers[0].get("url", "/")
    out = set()
    for path, method, item, op in operations(spec):
        srv = (op.get("servers") or item.get("servers") or [{"url": default}])[0]["url"]
        full = (srv.rstrip("/") + path) if srv not in ("", "/") else path
        out.add((method.upper(), full))
    return out


def check_routes(spec, src):
    pr = Problems()
    try:
        code = code_routes(src)
    except IOError as e:
        pr.add(str(e))
        return pr.finish("routes")
    documented = spec_routes(spec)
    for key in sorted(set(code) - documented):
        pr.add("%s %s is registered (%s) but not in the spec" % (key[0], key[1], code[key]))
    for key in sorted(documented - set(code)):
        pr.add("%s %s is in the spec but no module registers it" % key)
    if not code:
        pr.add("no routes found in the sources")
    return pr.finish("routes", " (%d routes)" % len(code))


def error_macros(src):
    """{MACRO: "CODE"} for BL_ERR_* and other *ERR* string macros."""
    macros = {}
    files = [os.path.join(src, "include", f) for f in
             (os.listdir(os.path.join(src, "include"))
              if os.path.isdir(os.path.join(src, "include")) else [])]
    texts = []
    for f in files:
        if f.endswith(".h"):
            with open(f, encoding="utf-8", errors="replace") as fh:
                texts.append(fh.read())
    texts += [t for _, t in module_sources(src)]
    for t in texts:
        for name, value in re.findall(r"#\s*define\s+(\w*ERR\w*)\s+\"(" + UPPER_SNAKE + r")\"", t):
            macros[name] = value
    return macros


def call_args(text, start):
    """The top-level arguments of the call whose "(" is at text[start]."""
    args, depth, cur, i, quote = [], 0, [], start + 1, None
    while i < len(text):
        ch = text[i]
        if quote:
            cur.append(ch)
            if ch == "\\" and i + 1 < len(text):
                cur.append(text[i + 1])
                i += 1
            elif ch == quote:
                quote = None
        elif ch in "\"'":
            quote = ch
            cur.append(ch)
        elif ch in "([{":
            depth += 1
            cur.append(ch)
        elif ch in ")]}":
            if depth == 0:
                args.append("".join(cur).strip())
                return args
            depth -= 1
            cur.append(ch)
        elif ch == "," and depth == 0:
            args.append("".join(cur).strip())
            cur = []
        else:
            cur.append(ch)
        i += 1
    return args


# Functions whose argument at this index is an error code; more are found
# in the sources: any function with a parameter named "code".
CODE_ARGS = {"bl_send_error": 2, "bl_note_error": 1, "bl_envelope_error_json": 2}


def code_parameters(texts):
    found = dict(CODE_ARGS)
    for t in texts:
        for name, params in re.findall(r"\b(\w+)\s*\(([^()]*)\)\s*[{;]", t):
            names = [re.findall(r"(\w+)\s*(?:\[\s*\])?\s*$", p.strip()) for p in params.split(",")]
            for idx, n in enumerate(names):
                if n and n[0] == "code" and "char" in params.split(",")[idx]:
                    found[name] = idx
    return found


def code_error_codes(src):
    """{"CODE": "first file using it"} for every error code in the modules."""
    macros = error_macros(src)
    sources = [(n, strip_comments(t)) for n, t in module_sources(src)]
    headers = []
    inc = os.path.join(src, "include")
    for f in (sorted(os.listdir(inc)) if os.path.isdir(inc) else []):
        if f.endswith(".h"):
            with open(os.path.join(inc, f), encoding="utf-8", errors="replace") as fh:
                headers.append(strip_comments(fh.read()))
    takes_code = code_parameters(headers + [t for _, t in sources])
    codes = {}

    def collect(arg, name):
        for c in re.findall(r"\"(" + UPPER_SNAKE + r")\"", arg):
            codes.setdefault(c, name)
        for m in re.findall(r"\b(\w*ERR\w*)\b", arg):
            if m in macros:
                codes.setdefault(macros[m], name)

    call = re.compile(r"\b(" + "|".join(map(re.escape, sorted(takes_code))) + r")\s*\(")
    for name, text in sources:
        for m in call.finditer(text):
            # a definition or prototype names a type before the parameter
            args = call_args(text, m.end() - 1)
            idx = takes_code[m.group(1)]
            if len(args) > idx and not re.match(r"^(const\s+)?char\b", args[idx]):
                collect(args[idx], name)
        # "*code = ..." assignments (httpd's own errors mapped to codes)
        for arg in re.findall(r"\bcode\s*=\s*([^;]+);", text):
            collect(arg, name)
        # a BL_ERR_* macro used anywhere is a code in use
        for m in set(re.findall(r"\b(BL_ERR_\w+)\b", text)):
            if m in macros:
                codes.setdefault(macros[m], name)
    return codes


def spec_error_codes(spec):
    env = spec.get("components", {}).get("schemas", {}).get("ErrorEnvelope")
    if not env:
        return None
    err = deref(spec, env.get("properties", {}).get("error", {}))
    code = deref(spec, err.get("properties", {}).get("code", {}))
    return code.get("enum")


def check_codes(spec, src):
    pr = Problems()
    enum = spec_error_codes(spec)
    if enum is None:
        pr.add("components.schemas.ErrorEnvelope.properties.error.properties.code.enum missing")
        return pr.finish("codes")
    try:
        used = code_error_codes(src)
    except IOError as e:
        pr.add(str(e))
        return pr.finish("codes")
    for c in sorted(set(used) - set(enum)):
        pr.add("error code %s is used (%s) but not in ErrorEnvelope's enum" % (c, used[c]))
    if len(set(enum)) != len(enum):
        pr.add("ErrorEnvelope's enum lists a code twice")
    # a response that narrows error.code must stay within the enum
    for where, node in walk(spec):
        if where.startswith("#/components/schemas/ErrorEnvelope"):
            continue
        try:
            narrowed = node["properties"]["error"]["properties"]["code"]["enum"]
        except (KeyError, TypeError):
            continue
        for c in narrowed:
            if c not in enum:
                pr.add("%s: error.code %s is not in ErrorEnvelope's enum" % (where, c))
    unused = sorted(set(enum) - set(used))
    note = " (%d codes used" % len(used)
    note += "; documented, not seen in modules/: %s)" % ", ".join(unused) if unused else ")"
    return pr.finish("codes", note)


# ---------------------------------------------------------------- validate

def find_operation(spec, method, path):
    paths = spec.get("paths") or {}
    candidates = [path]
    for s in spec.get("servers") or []:
        u = s.get("url", "").rstrip("/")
        if u and path.startswith(u + "/"):
            candidates.append(path[len(u):])
    for c in candidates:
        item = paths.get(c)
        if isinstance(item, dict) and method.lower() in item:
            return c, item[method.lower()]
    raise KeyError("%s %s is not in the spec" % (method.upper(), path))


def response_schema(spec, op, status, ctype):
    responses = op.get("responses") or {}
    resp = None
    for key in (str(status), str(status)[0] + "XX", "default"):
        if key in responses:
            resp = deref(spec, responses[key])
            break
    if resp is None:
        raise KeyError("status %s is not documented (documented: %s)"
                       % (status, ", ".join(sorted(map(str, responses)))))
    content = resp.get("content") or {}
    if not content:
        return None
    base = (ctype or "application/json").split(";")[0].strip().lower()
    media = content.get(base)
    if media is None:
        for k, v in content.items():
            if k.split(";")[0].strip().lower() == base:
                media = v
    if media is None:
        raise KeyError("content type %s is not documented for status %s (documented: %s)"
                       % (base, status, ", ".join(sorted(content))))
    return media.get("schema")


def validate_body(spec, schema, body_text):
    pr = Problems()
    doc = translate_document(spec)
    try:
        body = json.loads(body_text)
    except ValueError as e:
        pr.add("the body is not JSON: %s" % e)
        return pr
    v = validator_for(doc, to_json_schema(schema))
    for e in sorted(v.iter_errors(body), key=lambda e: list(e.absolute_path)):
        loc = "/".join(str(p) for p in e.absolute_path) or "(body)"
        pr.add("%s: %s" % (loc, e.message))
        for sub in (e.context or [])[:6]:
            sloc = "/".join(str(p) for p in sub.absolute_path) or "(body)"
            pr.add("  | %s: %s" % (sloc, sub.message))
    return pr


def cmd_validate(spec, method, path, status, ctype):
    pr = Problems()
    try:
        _, op = find_operation(spec, method, path)
        schema = response_schema(spec, op, status, ctype)
    except KeyError as e:
        pr.add(str(e).strip("'\""))
        return pr.finish("validate")
    body_text = sys.stdin.read()
    if schema is None:
        if body_text.strip():
            pr.add("status %s is documented without a body, but one came" % status)
        return pr.finish("validate")
    return validate_body(spec, schema, body_text).finish(
        "validate %s %s %s" % (method.upper(), path, status))


def cmd_schema(spec, name):
    schemas = spec.get("components", {}).get("schemas", {})
    if name not in schemas:
        pr = Problems()
        pr.add("no components.schemas.%s" % name)
        return pr.finish("schema")
    return validate_body(spec, {"$ref": "#/components/schemas/%s" % name},
                         sys.stdin.read()).finish("schema %s" % name)


def cmd_response(spec, name, ctype):
    pr = Problems()
    resp = spec.get("components", {}).get("responses", {}).get(name)
    if resp is None:
        pr.add("no components.responses.%s" % name)
        return pr.finish("response")
    op = {"responses": {"default": {"$ref": "#/components/responses/%s" % name}}}
    try:
        schema = response_schema(spec, op, 0, ctype)
    except KeyError as e:
        pr.add(str(e).strip("'\""))
        return pr.finish("response")
    if schema is None:
        pr.add("components.responses.%s has no body" % name)
        return pr.finish("response")
    return validate_body(spec, schema, sys.stdin.read()).finish("response %s" % name)


# ---------------------------------------------------------------- conformance

def path_template(spec, method, path):
    """The spec path (template) a concrete request path falls under, or None:
    an exact path first, else the template with the fewest parameters."""
    paths = spec.get("paths") or {}
    candidates = [path]
    for s in spec.get("servers") or []:
        u = s.get("url", "").rstrip("/")
        if u and path.startswith(u + "/"):
            candidates.append(path[len(u):])
    best = None
    for c in candidates:
        if isinstance(paths.get(c), dict) and method.lower() in paths[c]:
            return c
        for t, item in paths.items():
            if "{" not in t or not isinstance(item, dict) or method.lower() not in item:
                continue
            rx = "^" + re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(t)) + "$"
            if re.match(rx, c) and (best is None or t.count("{") < best.count("{")):
                best = t
    return best


def cmd_conformance(spec, capture):
    """Every captured live answer (JSON lines: method, path, status,
    content_type, body) against the documented response of its route."""
    pr = Problems()
    seen = {}
    checked = 0
    ops = set()
    doc = translate_document(spec)
    validators = {}

    def body_problems(schema, body_text):
        try:
            body = json.loads(body_text)
        except ValueError as e:
            return ["the body is not JSON: %s" % e]
        key = json.dumps(schema, sort_keys=True)
        if key not in validators:
            validators[key] = validator_for(doc, to_json_schema(schema))
        errors = sorted(validators[key].iter_errors(body), key=lambda e: list(e.absolute_path))
        return ["%s: %s" % ("/".join(str(p) for p in e.absolute_path) or "(body)", e.message)
                for e in errors]

    with open(capture, encoding="utf-8") as fh:
        records = [json.loads(line) for line in fh if line.strip()]
    for rec in records:
        method, path, status = rec["method"].upper(), rec["path"], int(rec["status"])
        if method in ("HEAD", "OPTIONS"):
            continue
        template = path_template(spec, method, path)
        if template is None:
            continue            # test-only routes and unknown paths
        ctype = rec.get("content_type") or ""
        key_base = "%s %s %s" % (method, template, status)
        try:
            _, op = find_operation(spec, method, template)
            schema = response_schema(spec, op, status, ctype if ctype else None)
            problems = []
            body = rec.get("body")
            if schema is not None and "json" in ctype.lower() and body is not None:
                problems = body_problems(schema, body)
            elif schema is None and body:
                problems = ["documented without a body, but one came"]
        except KeyError as e:
            problems = [str(e).strip("'\"")]
        checked += 1
        ops.add((method, template))
        for p in problems[:1]:
            key = "%s: %s" % (key_base, p)
            seen[key] = seen.get(key, 0) + 1
    for key, n in sorted(seen.items()):
        pr.add("%s (%d answer%s)" % (key, n, "" if n == 1 else "s"))
    return pr.finish("conformance", " (%d answers of %d operations checked)" % (checked, len(ops)))


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--src", default=os.environ.get("BL_SRC_DIR") or default_src(),
                    help="tree root (modules/, include/, docs/)")
    ap.add_argument("--spec", help="the spec (default: SRC/docs/openapi.yaml)")
    ap.add_argument("mode", choices=("structure", "routes", "codes", "validate", "schema",
                                     "response", "conformance", "all"))
    ap.add_argument("args", nargs="*")
    a = ap.parse_args(argv)
    spec_path = a.spec or os.path.join(a.src, "docs", "openapi.yaml")
    try:
        spec = load_spec(spec_path)
    except (IOError, OSError, ValueError, yaml.YAMLError) as e:
        print("not ok: cannot read %s: %s" % (spec_path, e))
        return 1
    if a.mode == "structure":
        return check_structure(spec)
    if a.mode == "routes":
        return check_routes(spec, a.src)
    if a.mode == "codes":
        return check_codes(spec, a.src)
    if a.mode == "all":
        rc = check_structure(spec)
        rc |= check_routes(spec, a.src)
        return rc | check_codes(spec, a.src)
    if a.mode == "validate":
        if len(a.args) not in (3, 4) or not a.args[2].isdigit():
            ap.error("validate METHOD PATH STATUS [CONTENT_TYPE]")
        return cmd_validate(spec, a.args[0], a.args[1], int(a.args[2]),
                            a.args[3] if len(a.args) > 3 else None)
    if a.mode == "conformance":
        if len(a.args) != 1:
            ap.error("conformance CAPTURE_FILE")
        return cmd_conformance(spec, a.args[0])
    if a.mode == "response":
        if len(a.args) not in (1, 2):
            ap.error("response NAME [CONTENT_TYPE]")
        return cmd_response(spec, a.args[0], a.args[1] if len(a.args) > 1 else None)
    if len(a.args) != 1:
        ap.error("schema NAME")
    return cmd_schema(spec, a.args[0])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
