"""Events for the no-show Lambda function, and the checks of its answers.

`make_events(n, seed)` builds a deterministic mix of valid invocations (single
appointments, batches, API Gateway proxy events, missing values written as null or left
out, flags as booleans, times as "HH:MM") and malformed ones of every kind the function
must refuse. Each event carries what the answer must be. `Checker` verifies answers:
errors must name the field, valid answers are compared with xgboost (risk, SHAP values,
top drivers) in one batch at the end.
"""
from __future__ import annotations

import base64
import dataclasses
import json
import math
import random
import sys
from collections import Counter
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "examples" / "models"))
from noshow_data import FEATURES, make_noshow  # noqa: E402

FLAGS = ["Scholarship", "Hypertension", "Diabetes", "Alcoholism", "Disability", "Previously_Treated", "SMS_Received",
         "Weather_Conditions"]
CATEGORIES = ["Hospital_Area", "Specialty", "Facility_Type", "Type_of_Care", "Social_Status", "Gender"]
MAX_REQUEST = 256 << 10
MAX_EVENT = 1 << 20
MAX_BATCH = 100
TOP = 5


@dataclasses.dataclass
class Event:
    category: str                      # for the counts printed at the end
    payload: bytes
    valid: bool
    proxy: bool = False
    batch: bool = False
    rows: list | None = None           # expected float32 rows of a valid event
    field: str | None = None           # the field an error must name (None: no field)
    error_type: str = "InvalidRequest"
    status: int = 400                  # proxy answers


# ------------------------------------------------------------------------------------ #
# valid appointments


def _clock(seconds: float) -> str:
    s = int(seconds)
    return f"{s // 3600:02d}:{s % 3600 // 60:02d}" + (f":{s % 60:02d}" if s % 60 else "")


def appointment(values: np.ndarray, rng: random.Random, extra_missing: int = 0) -> tuple[dict, np.ndarray]:
    """A request object for one row (as the project records it) and the row it stands for."""
    row = values.astype(np.float32).copy()
    if extra_missing:
        for j in rng.sample(range(len(FEATURES)), extra_missing):
            row[j] = np.nan
    if np.all(np.isnan(row)):
        row[FEATURES.index("Age")] = 40.0
    obj: dict = {}
    order = list(range(len(FEATURES)))
    if rng.random() < 0.2:
        rng.shuffle(order)  # keys in any order
    for j in order:
        name, x = FEATURES[j], row[j]
        if np.isnan(x):
            if rng.random() < 0.5:
                obj[name] = None  # else left out
            continue
        if name in FLAGS and rng.random() < 0.3:
            obj[name] = bool(x)
        elif name in FLAGS or name in CATEGORIES:
            obj[name] = int(x)
        elif name == "Appointment_Time" and rng.random() < 0.5:
            obj[name] = _clock(float(x))
        else:
            obj[name] = float(x) if rng.random() < 0.8 or x != int(x) else int(x)
    return obj, row


def proxy_event(body: bytes, rng: random.Random, encode: bool | None = None) -> bytes:
    encode = rng.random() < 0.3 if encode is None else encode
    text = base64.b64encode(body).decode() if encode else body.decode("utf-8")
    if rng.random() < 0.6:  # HTTP API, payload format 2.0
        event = {"version": "2.0", "routeKey": "POST /score", "rawPath": "/score", "rawQueryString": "",
                 "headers": {"content-type": "application/json"},
                 "requestContext": {"http": {"method": "POST", "path": "/score"}, "requestId": "abc",
                                    "routeKey": "POST /score", "stage": "$default"},
                 "body": text, "isBase64Encoded": encode}
    else:  # REST API / payload format 1.0
        event = {"resource": "/score", "path": "/score", "httpMethod": "POST",
                 "headers": {"Content-Type": "application/json"}, "requestContext": {"resourcePath": "/score"},
                 "body": text, "isBase64Encoded": encode}
    return json.dumps(event).encode()


def _dump(obj) -> bytes:
    return json.dumps(obj, allow_nan=True).encode()


# ------------------------------------------------------------------------------------ #
# malformed appointments: (mutated object, field inside the appointment, category)

def _bad_value(obj: dict, rng: random.Random) -> tuple[dict, str, str]:
    obj = dict(obj)
    kind = rng.choice(["unknown", "unknown", "string", "container", "boolean", "nonfinite", "range", "clock",
                       "category", "flag"])
    if kind == "unknown":
        name = rng.choice(["Agee", "age", "Appointment_Status", " Age", "Distance", "SMS_received", "appointment"])
        obj[name] = 1
        return obj, name, "unknown field"
    if kind == "string":
        name = rng.choice([f for f in FEATURES if f != "Appointment_Time"])
        obj[name] = rng.choice(["42", "yes", "", "NaN", "1e3"])
        return obj, name, "wrong type"
    if kind == "container":
        name = rng.choice(FEATURES)
        obj[name] = rng.choice([[1], {"v": 1}, []])
        return obj, name, "wrong type"
    if kind == "boolean":
        name = rng.choice([f for f in FEATURES if f not in FLAGS])
        obj[name] = rng.choice([True, False])
        return obj, name, "wrong type"
    if kind == "nonfinite":
        name = rng.choice(FEATURES)
        obj[name] = rng.choice([math.nan, math.inf, -math.inf, "1e999"])  # "1e999" is patched into a literal
        return obj, name, "NaN/Inf"
    if kind == "range":
        name, value = rng.choice([("Age", 151), ("Age", -1), ("Hospital_Rating", 0.5), ("Hospital_Rating", 6),
                                  ("Distance_km", -0.1), ("Appointment_Time", 86400), ("Appointment_Time", -1),
                                  ("Waiting_Time_Minutes", -5), ("Average_Fee", 1e39), ("Number_days", 1e6)])
        obj[name] = value
        return obj, name, "out of range"
    if kind == "clock":
        obj["Appointment_Time"] = rng.choice(["24:00", "7:30", "07:60", "noon", "", "07:30:60", "07-30", "0730"])
        return obj, "Appointment_Time", "wrong type"
    if kind == "category":
        name = rng.choice(CATEGORIES)
        obj[name] = rng.choice([-1, 2.5, 1e7, 0.1])
        return obj, name, "out of range"
    name = rng.choice(FLAGS)
    obj[name] = rng.choice([2, -1, 0.5, 1.0000001])
    return obj, name, "out of range"


def _encode_with_literals(obj) -> bytes:
    text = json.dumps(obj, allow_nan=True)  # NaN, Infinity, -Infinity literals
    return text.replace('"1e999"', "1e999").encode()


INVALID_JSON = [b"", b" ", b"{", b'{"Age": 3', b'{"Age": 3,}', b"{'Age': 3}", b'{"Age": 3} x', b'{"Age": 3}{"Age": 4}',
                b'{"Age": .5}', b'{"Age": 1.}', b'{"Age": +1}', b'{"Age": 0x10}', b'{"Age": 01}', b'{"Age": nan}',
                b'{"Age": tru}', b'{"Age": TRUE}', b'{"Age\xff": 3}', b'{"Age": "\xc3\x28"}', b'{"Age": 3 /* c */}',
                b'{"Age": 3, "x\n": 1}', b"[" * 40 + b"]" * 40, b'{"a":' * 20 + b"1" + b"}" * 20, b"\x00",
                b'{"Age": 3}\x00{"x": 1}', b"\xef\xbb\xbf{}", b'{"Age" 3}', b"[1 2]", b'{"Age": 3]']
NOT_A_REQUEST = [b"3", b'"appointment"', b"null", b"true", b"-1.5"]


# ------------------------------------------------------------------------------------ #

def make_events(n: int, seed: int = 0) -> list[Event]:
    rng = random.Random(seed)
    frame, _ = make_noshow(max(2000, n), seed=seed + 1)
    data = frame.to_numpy(dtype=np.float32)
    next_row = [0]

    def fresh(extra_missing: int = 0) -> tuple[dict, np.ndarray]:
        i = next_row[0] % len(data)
        next_row[0] += 1
        return appointment(data[i], rng, extra_missing)

    def some_missing() -> int:
        return rng.choice([0, 0, 0, 1, 3, 8, 15, 22])

    def wrap(objs: list[dict], style: str) -> tuple[bytes, str]:
        """style: single | array | appointments -> (payload, field prefix of item i as format)."""
        if style == "single":
            return _dump(objs[0]), ""
        if style == "array":
            return _dump(objs), "[{i}]"
        return _dump({"appointments": objs}), "appointments[{i}]"

    events: list[Event] = []
    for _ in range(n):
        r = rng.random()
        if r < 0.30:  # one appointment
            missing = some_missing()
            obj, row = fresh(missing)
            events.append(Event("valid: single" + (" (missing values)" if missing else ""), _dump(obj), True,
                                rows=[row]))
        elif r < 0.42:  # a batch
            size = rng.choice([1, 2, 3, 5, 8, 10, 20]) if rng.random() < 0.97 else MAX_BATCH
            pairs = [fresh(some_missing()) for _ in range(size)]
            style = rng.choice(["array", "appointments"])
            payload, _ = wrap([p[0] for p in pairs], style)
            events.append(Event(f"valid: batch ({'array' if style == 'array' else 'appointments'})", payload, True,
                                batch=True, rows=[p[1] for p in pairs]))
        elif r < 0.55:  # through API Gateway
            if rng.random() < 0.7:
                obj, row = fresh(some_missing())
                body, rows, batch = _dump(obj), [row], False
            else:
                pairs = [fresh(some_missing()) for _ in range(rng.randint(2, 6))]
                body, rows, batch = _dump({"appointments": [p[0] for p in pairs]}), [p[1] for p in pairs], True
            events.append(Event("valid: API Gateway", proxy_event(body, rng), True, proxy=True, batch=batch, rows=rows))
        else:
            events.append(_malformed(rng, fresh, wrap))
    return events


def _malformed(rng: random.Random, fresh, wrap) -> Event:
    kind = rng.random()
    if kind < 0.40:  # one bad field, alone or inside a batch, maybe through API Gateway
        obj, _ = fresh(rng.choice([0, 0, 3]))
        bad, name, category = _bad_value(obj, rng)
        style = rng.choice(["single", "single", "array", "appointments"])
        objs = [bad]
        if style != "single":
            objs = [fresh()[0] for _ in range(rng.randint(0, 4))]
            objs.insert(rng.randint(0, len(objs)), bad)
        index = objs.index(bad)
        body = _encode_with_literals(objs[0] if style == "single" else
                                     (objs if style == "array" else {"appointments": objs}))
        prefix = "" if style == "single" else ("[%d]." % index if style == "array" else "appointments[%d]." % index)
        field = prefix + name
        if rng.random() < 0.25:
            return Event(f"bad: {category}", proxy_event(body, rng), False, proxy=True, field=field)
        return Event(f"bad: {category}", body, False, field=field)
    if kind < 0.55:
        if rng.random() < 0.2:
            body = rng.choice([b"{", b'{"Age": 3', b"{'Age': 3}", b'{"Age": 3} x', b'{"Age": 1.}', b"[1 2]"])
            return Event("bad: invalid JSON", proxy_event(body, rng), False, proxy=True, field=None)
        return Event("bad: invalid JSON", rng.choice(INVALID_JSON), False, field=None)
    if kind < 0.62:  # no values at all
        style = rng.choice(["single", "array", "appointments"])
        empty = rng.choice([{}, {"Age": None}, {f: None for f in FEATURES}])
        if style == "single":
            return Event("bad: empty appointment", _dump(empty), False, field=None)
        objs = [fresh()[0] for _ in range(rng.randint(0, 3))]
        i = rng.randint(0, len(objs))
        objs.insert(i, empty)
        payload, prefix = wrap(objs, style)
        return Event("bad: empty appointment", payload, False, field=prefix.format(i=i))
    if kind < 0.70:  # batch limits
        style = rng.choice(["array", "appointments"])
        if rng.random() < 0.3:
            payload, _ = wrap([], style)
            return Event("bad: batch size", payload, False, field=None if style == "array" else "appointments")
        size = rng.randint(MAX_BATCH + 1, 2 * MAX_BATCH)
        payload, _ = wrap([fresh()[0] for _ in range(size)], style)
        return Event("bad: batch size", payload, False, field=None if style == "array" else "appointments")
    if kind < 0.78:  # not a request
        choice = rng.random()
        if choice < 0.4:
            return Event("bad: request shape", rng.choice(NOT_A_REQUEST), False, field=None)
        if choice < 0.6:
            return Event("bad: request shape", _dump({"appointments": rng.choice([3, "x", {"Age": 3}, None])}), False,
                         field="appointments")
        if choice < 0.8:
            objs = [fresh()[0] for _ in range(3)]
            objs[1] = rng.choice([3, "x", [1], None])
            style = rng.choice(["array", "appointments"])
            payload, prefix = wrap(objs, style)
            return Event("bad: request shape", payload, False, field=prefix.format(i=1))
        return Event("bad: request shape", _dump({"appointments": [fresh()[0]], "extra": 1}), False, field="extra")
    if kind < 0.82:  # too large
        obj, _ = fresh()
        choice = rng.random()
        if choice < 0.4:  # a valid request padded past 256 KiB (the event stays below 1 MiB)
            pad = " " * rng.randint(MAX_REQUEST, 3 * MAX_REQUEST)
            return Event("bad: too large", b"{" + pad.encode() + _dump(obj)[1:], False, field=None,
                         error_type="RequestTooLarge", status=413)
        if choice < 0.7:  # an event beyond 1 MiB
            pad = " " * rng.randint(MAX_EVENT, MAX_EVENT + MAX_EVENT // 4)
            return Event("bad: too large", b"{" + pad.encode() + _dump(obj)[1:], False, field=None,
                         error_type="RequestTooLarge", status=413)
        if choice < 0.85:  # through API Gateway, body beyond 256 KiB
            body = b"{" + b" " * (MAX_REQUEST + 10) + _dump(obj)[1:]
            return Event("bad: too large", proxy_event(body, rng), False, proxy=True, field="body",
                         error_type="RequestTooLarge", status=413)
        # an API Gateway event beyond 1 MiB (answered from its first bytes)
        body = b"{" + b" " * (MAX_EVENT + 10) + _dump(obj)[1:]
        return Event("bad: too large", proxy_event(body, rng, encode=False), False, proxy=True, field=None,
                     error_type="RequestTooLarge", status=413)
    # broken API Gateway events
    choice = rng.random()
    base = json.loads(proxy_event(_dump(fresh()[0]), rng, encode=False))
    if choice < 0.3:
        base["body"] = None
        field = "body"
    elif choice < 0.5:
        del base["body"]
        field = "body"
    elif choice < 0.7:
        base["body"], base["isBase64Encoded"] = rng.choice(["not base64!", "YWJj=", "YQ", "eyJBZ2UiOjN9\n"]), True
        field = "body"
    else:
        base["body"] = rng.choice(["{", "not json", "{\"Age\": 3} x", ""])
        field = None
    return Event("bad: API Gateway event", json.dumps(base).encode(), False, proxy=True, field=field)


# ------------------------------------------------------------------------------------ #
# checking answers


class Checker:
    def __init__(self, model_path: Path, threshold: float = 0.5):
        import xgboost as xgb
        self.booster = xgb.Booster()
        self.booster.load_model(str(model_path))
        self.threshold = threshold
        self.counts: Counter = Counter()
        self.pending: list[tuple[np.ndarray, dict, str]] = []  # (row, answer, where)
        self.failures: list[str] = []

    def fail(self, message: str) -> None:
        if len(self.failures) < 50:
            self.failures.append(message)

    def check(self, event: Event, result, label: str) -> None:
        self.counts[event.category] += 1
        try:
            self._check(event, result, label)
        except Exception as e:  # noqa: BLE001 - reported with the event
            self.fail(f"{label} ({event.category}): {type(e).__name__}: {e}")

    def _check(self, event: Event, result, label: str) -> None:
        body = json.loads(result.body)
        if event.proxy:
            if result.kind != "response":
                return self.fail(f"{label}: a proxy event must be answered through /response, got {result.kind}")
            status = body["statusCode"]
            assert body["headers"]["Content-Type"] == "application/json", body
            inner = json.loads(body["body"])
            if event.valid and status != 200:
                return self.fail(f"{label}: expected 200, got {status}: {inner}")
            if not event.valid and status != event.status:
                return self.fail(f"{label}: expected HTTP {event.status}, got {status}: {inner}")
            body = inner
        elif event.valid and result.kind != "response":
            return self.fail(f"{label}: valid event answered with an error: {body}")
        elif not event.valid:
            if result.kind != "error":
                return self.fail(f"{label}: malformed event answered as a success: {body}")
            if result.headers.get("lambda-runtime-function-error-type") != event.error_type:
                return self.fail(f"{label}: error type header {result.headers.get('lambda-runtime-function-error-type')}")
        if not event.valid:
            if body.get("errorType") != event.error_type:
                return self.fail(f"{label}: expected errorType {event.error_type}: {body}")
            if body.get("field") != event.field:
                return self.fail(f"{label}: expected field {event.field!r}: {body}")
            if event.field and event.field not in body["errorMessage"]:
                return self.fail(f"{label}: the message does not name {event.field!r}: {body}")
            return None
        answers = body["results"] if event.batch else [body]
        if event.batch and (body["count"] != len(event.rows) or body["threshold"] != self.threshold):
            return self.fail(f"{label}: bad batch envelope")
        if not event.batch and body["threshold"] != self.threshold:
            return self.fail(f"{label}: threshold {body['threshold']}")
        if len(answers) != len(event.rows):
            return self.fail(f"{label}: {len(answers)} answers for {len(event.rows)} rows")
        for i, (row, answer) in enumerate(zip(event.rows, answers)):
            self.pending.append((row, answer, f"{label}[{i}]"))
        return None

    def verify_numbers(self) -> dict:
        """Compares every valid answer with xgboost; returns the largest differences."""
        import xgboost as xgb
        if not self.pending:
            return {"rows": 0}
        x = np.stack([p[0] for p in self.pending]).astype(np.float32)
        dm = xgb.DMatrix(x, missing=np.nan, feature_names=FEATURES)
        prob = self.booster.predict(dm)
        contribs = self.booster.predict(dm, pred_contribs=True)
        worst_risk = worst_shap = 0.0
        for k, (row, answer, where) in enumerate(self.pending):
            d = abs(answer["risk"] - float(prob[k]))
            worst_risk = max(worst_risk, d)
            if d > 1e-6:
                self.fail(f"{where}: risk {answer['risk']} vs xgboost {prob[k]}")
            expected_decision = "likely_no_show" if answer["risk"] >= self.threshold else "likely_attend"
            if answer["decision"] != expected_decision:
                self.fail(f"{where}: decision {answer['decision']} at risk {answer['risk']}")
            c = contribs[k]
            d = abs(answer["base_value"] - float(c[-1]))
            worst_shap = max(worst_shap, d)
            if d > 1e-5:
                self.fail(f"{where}: base value {answer['base_value']} vs {c[-1]}")
            drivers = answer["top_drivers"]
            if len(drivers) != TOP:
                self.fail(f"{where}: {len(drivers)} drivers")
                continue
            names = [dr["feature"] for dr in drivers]
            idx = [FEATURES.index(n) for n in names]
            if len(set(idx)) != TOP:
                self.fail(f"{where}: repeated drivers {names}")
            for dr, j in zip(drivers, idx):
                d = abs(dr["contribution"] - float(c[j]))
                worst_shap = max(worst_shap, d)
                if d > 1e-5:
                    self.fail(f"{where}: SHAP of {dr['feature']} {dr['contribution']} vs {c[j]}")
                value = row[j]
                if (dr["value"] is None) != bool(np.isnan(value)) or (
                        dr["value"] is not None and np.float32(dr["value"]) != value):
                    self.fail(f"{where}: value of {dr['feature']} {dr['value']} vs {value}")
            mags = [abs(dr["contribution"]) for dr in drivers]
            if any(mags[i] < mags[i + 1] for i in range(TOP - 1)):
                self.fail(f"{where}: drivers not ordered by |contribution|: {mags}")
            others = [abs(float(c[j])) for j in range(len(FEATURES)) if j not in idx]
            if others and min(abs(float(c[j])) for j in idx) < max(others) - 1e-5:
                self.fail(f"{where}: a larger contribution was left out of the top five")
            missing = [FEATURES[j] for j in range(len(FEATURES)) if np.isnan(row[j])]
            if answer["missing"] != missing:
                self.fail(f"{where}: missing {answer['missing']} vs {missing}")
        return {"rows": len(self.pending), "max_risk_diff": worst_risk, "max_shap_diff": worst_shap}
