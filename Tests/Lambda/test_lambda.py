"""The no-show Lambda function (examples/lambda) against a local Runtime API emulator.

Runs `bootstrap` from the deployment zip (make lambda-zip), unpacked into a temporary
folder, with the libraries the zip carries. 10,000 events of every kind go through one
process; every answer is checked (valid ones against xgboost on the same JSON model:
risk within 1e-6, SHAP values within 1e-5), every malformed one must be refused with an
error naming the field while the function keeps serving. Also: init failures, the
threshold and required-feature settings, the JSON model fallback, the zip's contents,
and the SAM template (cfn-lint, aws-sam-translator).

    .venv/bin/python -m pytest -q Tests/Lambda          (make lambda-test)
    MEDINFER_LAMBDA_CHECK=valgrind ... -k memory_checked  (make lambda-valgrind)
    MEDINFER_LAMBDA_CHECK=asan ... -k memory_checked      (make lambda-asan)
"""
from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from emulator import Emulator, unpack_zip  # noqa: E402
from events import FEATURES, MAX_BATCH, Checker, Event, _dump, make_events  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
ZIP = Path(os.environ.get("MEDINFER_LAMBDA_ZIP", ROOT / ".build" / "lambda" / "medinfer-noshow-lambda.zip"))
JSON_MODEL = ROOT / "examples" / "models" / "noshow_xgb.json"
TEMPLATE = ROOT / "examples" / "lambda" / "template.yaml"
N_EVENTS = int(os.environ.get("MEDINFER_LAMBDA_EVENTS", "10000"))


@pytest.fixture(scope="session")
def package(tmp_path_factory) -> Path:
    if not ZIP.exists():
        pytest.fail(f"{ZIP} does not exist: run `make lambda-zip`")
    folder = tmp_path_factory.mktemp("task")
    return unpack_zip(ZIP, folder)


def run_events(command, events: list[Event], checker: Checker, env=None, stderr_path=None, timeout=120.0,
               chunked_every=7, close_every=13):
    """Starts the function, sends the events (all queued before it starts), checks every
    answer. Returns (results, emulator stats)."""
    with Emulator(chunked_every=chunked_every, close_every=close_every) as emu:
        ids = [emu.invoke(e.payload) for e in events]
        emu.start_function(command, env=env, stderr_path=stderr_path)
        results = emu.wait(ids, timeout=timeout)
        alive = emu.process.poll() is None
        rss = emu.peak_rss_kb()
        started = emu.started_at
        protocol_errors = list(emu.protocol_errors)
    for k, (event, rid) in enumerate(zip(events, ids)):
        checker.check(event, results[rid], f"event {k}")
    answers = [results[r] for r in ids]
    return answers, {"alive": alive, "rss_kb": rss, "started": started, "protocol_errors": protocol_errors}


# ------------------------------------------------------------------------------------ #


def test_ten_thousand_events(package, tmp_path, capsys):
    events = make_events(N_EVENTS, seed=7)
    checker = Checker(JSON_MODEL)
    t0 = time.perf_counter()
    answers, stats = run_events([str(package / "bootstrap")], events, checker, stderr_path=str(tmp_path / "log"))
    elapsed = time.perf_counter() - t0
    numbers = checker.verify_numbers()
    log = (tmp_path / "log").read_text(errors="replace")

    cold_ms = (answers[0].received - stats["started"]) * 1e3
    single = [a.handler_ns for e, a in zip(events, answers) if e.category == "valid: single"]
    every = [a.handler_ns for a in answers]
    valid = sum(e.valid for e in events)
    with capsys.disabled():
        print(f"\n\nLambda function: {len(events)} events through one bootstrap process in {elapsed:.1f} s")
        for category, count in sorted(checker.counts.items()):
            print(f"  {category:40s} {count:6d}")
        print(f"  {'valid events':40s} {valid:6d}   rows checked against xgboost: {numbers['rows']}")
        print(f"  {'malformed events (all refused)':40s} {len(events) - valid:6d}")
        print(f"  max |risk - xgboost| {numbers.get('max_risk_diff', 0):.2e}, "
              f"max |SHAP - xgboost pred_contribs| {numbers.get('max_shap_diff', 0):.2e}")
        print(f"  cold start (process start -> first response): {cold_ms:.1f} ms")
        print(f"  warm handler time, one appointment: median {statistics.median(single) / 1e3:.1f} us "
              f"(p90 {sorted(single)[len(single) * 9 // 10] / 1e3:.1f} us); all events median "
              f"{statistics.median(every) / 1e3:.1f} us")
        print(f"  round trip through the emulator: {elapsed / len(events) * 1e6:.0f} us per event; "
              f"peak RSS {stats['rss_kb'] / 1024:.1f} MB")
    assert not checker.failures, "\n".join(checker.failures[:20])
    assert stats["alive"], "the function exited"
    assert not stats["protocol_errors"], stats["protocol_errors"][:5]
    assert "posting the answer failed" not in log and "GET next invocation failed" not in log, log[-2000:]
    assert all(a.handler_ns is not None for a in answers)
    assert numbers["rows"] > N_EVENTS // 2
    for category in ["bad: invalid JSON", "bad: unknown field", "bad: wrong type", "bad: NaN/Inf",
                     "bad: out of range", "bad: too large", "bad: batch size", "bad: empty appointment",
                     "bad: request shape", "bad: API Gateway event", "valid: API Gateway",
                     "valid: single (missing values)"]:
        assert checker.counts[category] > 0, f"no {category} events in the mix"


def test_required_features_and_threshold(package):
    """MEDINFER_REQUIRED_FEATURES makes named features mandatory; MEDINFER_THRESHOLD moves
    the decision."""
    env = {"MEDINFER_REQUIRED_FEATURES": "Age, SMS_Received", "MEDINFER_THRESHOLD": "0.9"}
    full = {"Age": 40, "SMS_Received": 1, "Weather_Conditions": 1}
    events = [
        Event("ok", _dump(full), True, rows=None),
        Event("missing", _dump({"SMS_Received": 1}), False, field="Age"),
        Event("null", _dump({"Age": 30, "SMS_Received": None}), False, field="SMS_Received"),
        Event("batch", _dump({"appointments": [full, {"Age": 3}]}), False, field="appointments[1].SMS_Received"),
    ]
    import numpy as np
    row = np.full(len(FEATURES), np.nan, dtype=np.float32)
    for k, v in full.items():
        row[FEATURES.index(k)] = v
    events[0].rows = [row]
    checker = Checker(JSON_MODEL, threshold=0.9)
    answers, stats = run_events([str(package / "bootstrap")], events, checker, env=env)
    checker.verify_numbers()
    assert not checker.failures, checker.failures
    assert json.loads(answers[0].body)["threshold"] == 0.9


def test_json_model_fallback_answers_identically(package, tmp_path):
    """A JSON model (MEDINFER_MODEL) loads too and gives byte-identical answers."""
    events = make_events(300, seed=11)
    out = {}
    for name, env in [("mdi", {}), ("json", {"MEDINFER_MODEL": str(JSON_MODEL)})]:
        checker = Checker(JSON_MODEL)
        answers, stats = run_events([str(package / "bootstrap")], events, checker, env=env)
        checker.verify_numbers()
        assert not checker.failures, checker.failures[:5]
        out[name] = [a.body for a in answers]
    assert out["mdi"] == out["json"]
    # without MEDINFER_MODEL and without noshow.mdi, bootstrap falls back to noshow_xgb.json beside it
    task = tmp_path / "task"
    shutil.copytree(package, task)
    (task / "noshow.mdi").unlink()
    shutil.copy(JSON_MODEL, task / "noshow_xgb.json")
    checker = Checker(JSON_MODEL)
    answers, _ = run_events([str(task / "bootstrap")], events[:20], checker)
    assert [a.body for a in answers] == out["mdi"][:20]


@pytest.mark.parametrize("env, words", [
    ({"MEDINFER_MODEL": "/nonexistent/model.mdi"}, ["/nonexistent/model.mdi", "MEDINFER_ERR_IO"]),
    ({"MEDINFER_THRESHOLD": "high"}, ["MEDINFER_THRESHOLD", "high"]),
    ({"MEDINFER_THRESHOLD": "1.5"}, ["MEDINFER_THRESHOLD"]),
    ({"MEDINFER_REQUIRED_FEATURES": "Age,Shoe_Size"}, ["Shoe_Size"]),
    ({"MEDINFER_MODEL": "CORRUPT"}, ["MEDINFER_ERR_PARSE"]),
])
def test_init_errors_are_reported(package, tmp_path, env, words):
    if env.get("MEDINFER_MODEL") == "CORRUPT":
        bad = tmp_path / "bad.json"
        bad.write_text('{"learner": {"gradient_booster": ')
        env = {"MEDINFER_MODEL": str(bad)}
    with Emulator() as emu:
        emu.start_function([str(package / "bootstrap")], env=env)
        body, headers = emu.wait_init_error()
        assert emu.process.wait(timeout=10) == 1
    error = json.loads(body)
    assert error["errorType"] == "InitError"
    assert headers.get("lambda-runtime-function-error-type") == "Runtime.InitError"
    for word in words:
        assert word in error["errorMessage"], error


def test_runtime_api_gone_or_hostile(package, tmp_path):
    """No Runtime API: exit (Lambda restarts the sandbox), never hang or crash."""
    proc = subprocess.run([str(package / "bootstrap")], env={"AWS_LAMBDA_RUNTIME_API": "127.0.0.1:1"},
                          capture_output=True, timeout=20)
    assert proc.returncode == 1 and b"GET next invocation failed" in proc.stderr
    proc = subprocess.run([str(package / "bootstrap")], env={}, capture_output=True, timeout=20)
    assert proc.returncode == 1 and b"AWS_LAMBDA_RUNTIME_API" in proc.stderr
    # an event far beyond every limit (the connection is dropped and the error still posted)
    checker = Checker(JSON_MODEL)
    huge = Event("bad: too large", b"[" + b" " * (20 << 20) + b"]", False, error_type="RequestTooLarge")
    after = make_events(3, seed=3)
    answers, stats = run_events([str(package / "bootstrap")], [huge, *after], checker)
    checker.verify_numbers()
    assert not checker.failures, checker.failures
    assert stats["alive"]


def test_zip_contents(package):
    names = {p.relative_to(package).as_posix() for p in package.rglob("*") if p.is_file()}
    assert {"bootstrap", "noshow.mdi", "lib/libmedinfer.so.1", "lib/libjson-c.so.5", "lib/libstdc++.so.6",
            "lib/libgcc_s.so.1"} <= names, names
    assert ZIP.stat().st_size < 10_000_000
    assert os.access(package / "bootstrap", os.X_OK)
    env = {k: v for k, v in os.environ.items() if k != "LD_LIBRARY_PATH"}
    ldd = subprocess.run(["ldd", str(package / "bootstrap")], capture_output=True, text=True, env=env).stdout
    for soname in ["libmedinfer.so.1", "libjson-c.so.5", "libstdc++.so.6", "libgcc_s.so.1"]:
        line = next(line for line in ldd.splitlines() if line.strip().startswith(soname))
        assert str(package / "lib") in line, line


def test_sam_template_is_valid(tmp_path, monkeypatch):
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")  # the translator wants a region; nothing is called
    import yaml
    from samtranslator.translator.transform import transform

    template = yaml.safe_load(TEMPLATE.read_text())
    function = template["Resources"]["NoShowScoreFunction"]["Properties"]
    assert (TEMPLATE.parent / function["CodeUri"]).resolve() == ZIP.resolve()
    # what `sam package` / `sam deploy` does with the local zip before the transform runs
    function["CodeUri"] = "s3://example-bucket/medinfer-noshow-lambda.zip"

    class NoManagedPolicies:
        def load(self):
            return {}

    out = transform(template, {}, NoManagedPolicies())
    resources = out["Resources"]
    functions = [r for r in resources.values() if r["Type"] == "AWS::Lambda::Function"]
    assert len(functions) == 1
    props = functions[0]["Properties"]
    assert props["Runtime"] == "provided.al2023" and props["Architectures"] == ["x86_64"]
    assert props["MemorySize"] == {"Ref": "MemorySize"} or props["MemorySize"] == 128
    routes = [r for r in resources.values() if r["Type"] == "AWS::ApiGatewayV2::Route"]
    if not routes:  # the HTTP API may be expressed as an OpenAPI body
        apis = [r for r in resources.values() if r["Type"] == "AWS::ApiGatewayV2::Api"]
        assert apis and "/score" in json.dumps(apis[0]["Properties"]["Body"]["paths"])
    cfn_lint = Path(sys.executable).parent / "cfn-lint"
    proc = subprocess.run([str(cfn_lint), str(TEMPLATE)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.skipif(not os.environ.get("MEDINFER_LAMBDA_CHECK"), reason="set MEDINFER_LAMBDA_CHECK=valgrind|asan")
def test_memory_checked(package, tmp_path, capsys):
    """A mix of events through bootstrap under valgrind memcheck or AddressSanitizer+UBSan;
    the function then exits cleanly (the emulator refuses /next) so leaks are checked."""
    mode = os.environ["MEDINFER_LAMBDA_CHECK"]
    events = [e for e in make_events(600, seed=5) if len(e.payload) < (1 << 20)] + make_events(800, seed=5)[-3:]
    log = tmp_path / "log"
    env = {}
    if mode == "valgrind":
        supp = ROOT / "Tests" / "CAPI" / "valgrind.supp"
        command = ["valgrind", "-q", "--error-exitcode=99", "--leak-check=full", "--errors-for-leak-kinds=definite",
                   f"--suppressions={supp}", str(package / "bootstrap")]
        env["SWIFT_BACKTRACE"] = "enable=no"
    elif mode == "asan":
        binary = ROOT / ".build" / "lambda" / "asan" / "bootstrap"
        command = [str(binary)]
        env.update(MEDINFER_MODEL=str(ROOT / ".build" / "lambda" / "noshow.mdi"), SWIFT_BACKTRACE="enable=no",
                   ASAN_OPTIONS="detect_leaks=1:exitcode=99:halt_on_error=1",
                   LSAN_OPTIONS=f"suppressions={ROOT / 'Tests' / 'CAPI' / 'lsan.supp'}:print_suppressions=0",
                   UBSAN_OPTIONS="halt_on_error=1:exitcode=99")
    else:
        pytest.fail(f"unknown MEDINFER_LAMBDA_CHECK={mode}")
    checker = Checker(JSON_MODEL)
    with Emulator(chunked_every=7, close_every=13) as emu:
        ids = [emu.invoke(e.payload) for e in events]
        emu.start_function(command, env=env, stderr_path=str(log))
        results = emu.wait(ids, timeout=900)
        emu.stopping.set()  # /next now answers 500: bootstrap frees everything and exits 1
        rc = emu.process.wait(timeout=300)
    for k, (event, rid) in enumerate(zip(events, ids)):
        checker.check(event, results[rid], f"event {k}")
    checker.verify_numbers()
    text = log.read_text(errors="replace")
    with capsys.disabled():
        print(f"\n{mode}: {len(events)} events, exit status {rc}")
    assert not checker.failures, checker.failures[:10]
    assert rc == 1, f"exit status {rc} (99 = {mode} found errors):\n{text[-4000:]}"
    assert "ERROR SUMMARY" not in text or "ERROR SUMMARY: 0 errors" in text, text[-4000:]
