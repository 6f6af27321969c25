"""The SDK's rules, through small packages written on the fly and startos.sdk.testing."""

from __future__ import annotations

import json
import os
import socket
import textwrap
import threading
from pathlib import Path

import pytest

from startos.protocol import runtime as wire
from startos.protocol.framing import encode_frame
from startos.runtime.effects import EffectsServer
from startos.sdk import (
    Backup,
    Daemon,
    DescriptionError,
    HttpCheck,
    Oneshot,
    OutsideSandboxError,
    SdkError,
    Service,
    _env,
    _progress,
    python_module,
    report_progress,
    volume_path,
)
from startos.sdk._loader import LoadFailure
from startos.sdk.testing import ServiceCallError, ServiceTester

from ..helpers import wait_until

HEADER = "from startos.sdk import *\nfrom startos.sdk import CheckResult\n"


def package(tmp_path: Path, code: str, *, volumes: list[str] | None = None) -> Path:
    folder = tmp_path / "pkg"
    (folder / "python").mkdir(parents=True)
    (folder / "python" / "startos_service.py").write_text(HEADER + textwrap.dedent(code))
    if volumes is not None:
        (folder / "manifest.json").write_text(json.dumps({"id": "pkg", "volumes": volumes}))
    return folder


def loaded(tmp_path: Path, code: str, **kwargs: object) -> ServiceTester:
    return ServiceTester(package(tmp_path, code, **kwargs), tmp_path / "sandbox")  # type: ignore[arg-type]


# -- declarations fail where they are written ------------------------------------------------------


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: Service(volumes="main"), "volumes must be a list"),
        (lambda: Service(volumes=["Main"]), "'Main' is not a volume id"),
        (lambda: Service(volumes=["a", "a"]), "a volume is listed twice"),
        (lambda: Service(volumes=["a"], backup=Backup(volumes=["b"])), "backup names undeclared volumes: b"),
        (lambda: Backup(volumes=["a"], per_volume={"b": ["x"]}), "per_volume names volumes not backed up: b"),
        (lambda: Backup(volumes=["a"], exclude="*.tmp"), "must be lists, not single strings"),
        (lambda: Daemon("web", argv="python -m x"), "daemon 'web': argv must be a list"),
        (lambda: Daemon("Web", argv=["x"]), "daemon 'Web'"),
        (lambda: Daemon("web", argv=[]), "daemon 'web'"),
        (lambda: Daemon("web", argv=["x", 1]), "daemon 'web': Expected `str`, got `int` - at `$.argv[1]`"),
        (lambda: Daemon("web", argv=["x"], requires="db"), "requires must be a list"),
        (lambda: Daemon("web", argv=["x"], stop_signal="SIGKILL"), "daemon 'web'"),
        (lambda: Daemon("web", argv=["x"], ready="http"), "ready must be an HttpCheck"),  # type: ignore[arg-type]
        (lambda: Daemon("web", argv=["x"], ready=HttpCheck(0)), "daemon 'web': HTTP check"),
        (lambda: Daemon("web", argv=["x"], ready=HttpCheck(80, "health")), "daemon 'web': HTTP check"),
        (lambda: Oneshot("init", argv=["x"], timeout=-1), "oneshot 'init'"),
        (lambda: python_module("not a module"), "is not a Python module name"),
    ],
)
def test_bad_declarations(build: object, message: str) -> None:
    with pytest.raises(SdkError) as caught:
        build()  # type: ignore[operator]
    assert message in str(caught.value)


def test_hook_registration_rules() -> None:
    service = Service(volumes=[])
    with pytest.raises(DescriptionError, match="name the init kinds"):
        service.init()
    with pytest.raises(DescriptionError, match="'boot' is not an init kind"):
        service.init("boot")  # type: ignore[arg-type]
    service.init("install")(lambda ctx: None)
    with pytest.raises(DescriptionError, match="already has an init hook for 'install'"):
        service.init("install", "restore")
    service.main(lambda ctx: [])
    with pytest.raises(DescriptionError, match="already has a main function"):
        service.main(lambda ctx: [])
    with pytest.raises(DescriptionError, match="must be a function"):
        service.uninit("uninstall")(42)  # type: ignore[arg-type]


def test_manifest_volumes_must_match(tmp_path: Path) -> None:
    with (
        pytest.raises(DescriptionError, match=r"declares volumes \['main'\] but manifest.json lists \['data'\]"),
        loaded(tmp_path, 'service = Service(volumes=["main"])\n', volumes=["data"]),
    ):
        pass


def test_missing_entry_module(tmp_path: Path) -> None:
    (tmp_path / "pkg" / "python").mkdir(parents=True)
    with (
        pytest.raises(LoadFailure, match=r"no python/startos_service\.py"),
        ServiceTester(tmp_path / "pkg", tmp_path / "sandbox"),
    ):
        pass


@pytest.mark.parametrize(
    ("code", "message"),
    [
        (
            '@service.migrate_up("1.0:0")\ndef a(ctx): pass\n@service.migrate_up("1.0.0:0")\ndef b(ctx): pass\n',
            "migrations '1.0:0' and '1.0.0:0' name the same version",
        ),
        ('@service.migrate_down("1.0.0:0")\ndef a(ctx): pass\n', "a down step needs an up step"),
        ('@service.migrate_up("one")\ndef a(ctx): pass\n', "up migration 'one'"),
    ],
)
def test_bad_migrations_fail_when_loaded(tmp_path: Path, code: str, message: str) -> None:
    with pytest.raises(DescriptionError, match=message), loaded(tmp_path, "service = Service(volumes=[])\n" + code):
        pass


# -- descriptions the host would refuse are refused in the package ---------------------------------


@pytest.mark.parametrize(
    ("items", "message"),
    [
        (
            '[Daemon("a", argv=["x"], requires=["b"])]',
            "'a' requires 'b', which is not a daemon, oneshot or health check",
        ),
        ('[Daemon("a", argv=["x"], requires=["a"])]', "'a' requires itself"),
        (
            '[Daemon("a", argv=["x"], requires=["b"]), Oneshot("b", argv=["x"], requires=["a"])]',
            "requires form a cycle: a -> b -> a",
        ),
        ('[Daemon("a", argv=["x"]), Oneshot("a", argv=["x"])]', "item id 'a' is used twice"),
        ('["not an item"]', "main returned str; return Daemon, Oneshot and HealthCheck items"),
    ],
)
def test_invalid_descriptions(tmp_path: Path, items: str, message: str) -> None:
    code = f"service = Service(volumes=[])\n@service.main\ndef main(ctx):\n    return {items}\n"
    with loaded(tmp_path, code) as t, pytest.raises(ServiceCallError) as caught:
        t.describe()
    assert caught.value.error.reason == "invalid" and message in caught.value.error.message


def test_service_without_main_has_no_daemons(tmp_path: Path) -> None:
    with loaded(tmp_path, 'service = Service(volumes=["main"])\n') as t:
        description = t.describe()
        assert description.daemons == () and description.volumes == ("main",)
        assert description.backup == wire.BackupSpec(volumes=(wire.BackupVolume(id="main"),))
        t.run_init("install")  # no hooks: every lifecycle call is a no-op
        t.run_uninit("uninstall")
        assert t.run_migration("1.0.0:0", "2.0.0:0").steps == ()


# -- migrations ---------------------------------------------------------------------------------------

STEPS = """
service = Service(volumes=["main"])
def log(ctx, text):
    with ctx.volume_path("main", "log").open("a") as f:
        f.write(text + "\\n")
@service.migrate_up("1.1.0:0")
def up11(ctx): log(ctx, f"up {ctx.step} ({ctx.from_version} -> {ctx.to_version})")
@service.migrate_down("1.1.0:0")
def down11(ctx): log(ctx, f"down {ctx.step}")
@service.migrate_up("1.2.0:0")
def up12(ctx): log(ctx, f"up {ctx.step}")
@service.migrate_down("1.2.0:0")
def down12(ctx): raise RuntimeError("cannot undo 1.2")
@service.migrate_up("2.0.0:0")
def up20(ctx): log(ctx, f"up {ctx.step}")
@service.migrate_up("#fork:1.5.0:0")
def fork(ctx): log(ctx, "fork")
"""


def test_migration_chains(tmp_path: Path) -> None:
    with loaded(tmp_path, STEPS) as t:
        assert t.run_migration("1.0.0:0", "1.2.0:0").steps == ("1.1.0:0", "1.2.0:0")
        assert t.volume("main", "log").read_text() == "up 1.1.0:0 (1.0.0:0 -> 1.2.0:0)\nup 1.2.0:0\n"
        assert t.run_migration("1.1.0:0", "3.0.0:0", dry_run=True).steps == ("1.2.0:0", "2.0.0:0")
        assert t.run_migration("1.1.0:0", "1.0.0:0").steps == ("1.1.0:0",)
        assert t.volume("main", "log").read_text().endswith("down 1.1.0:0\n")
        # Flavored steps only run between versions of that flavor.
        assert t.run_migration("#fork:1.0.0:0", "#fork:2.0.0:0", dry_run=True).steps == ("#fork:1.5.0:0",)


def test_downgrade_past_a_step_without_down(tmp_path: Path) -> None:
    with loaded(tmp_path, STEPS) as t:
        with pytest.raises(ServiceCallError) as caught:
            t.run_migration("3.0.0:0", "1.0.0:0", dry_run=True)
        assert caught.value.error.reason == "no-migration-path"
        assert caught.value.error.message == (
            "cannot downgrade from 3.0.0:0 to 1.0.0:0: the migration to 2.0.0:0 has no down step"
        )


def test_failing_step_names_the_steps_already_run(tmp_path: Path) -> None:
    with loaded(tmp_path, STEPS) as t:
        with pytest.raises(ServiceCallError) as caught:
            t.run_migration("1.2.0:0", "1.0.0:0")
        error = caught.value.error
        assert (error.reason, error.hook) == ("hook-failed", "migration down 1.2.0:0")
        assert error.message == "RuntimeError: cannot undo 1.2"
        assert isinstance(caught.value.__cause__, RuntimeError)


def test_bad_versions_in_a_request(tmp_path: Path) -> None:
    with loaded(tmp_path, STEPS) as t, pytest.raises(ServiceCallError) as caught:
        t.run_migration("1.0.0:0", "latest")
    assert caught.value.error.reason == "no-migration-path" and "to_version" in caught.value.error.message


# -- function checks ----------------------------------------------------------------------------------

CHECKS = """
import threading
service = Service(volumes=[])
def make(fn, **kw):
    return Daemon(fn.__name__.replace("_", "-"), argv=["x"], ready=FunctionCheck(fn, **kw))
def ok(ctx): return True
def bad(ctx): return False
def odd(ctx): return "yes"
def raises(ctx): raise KeyError("no such block")
def slow(ctx): threading.Event().wait(5)
def loading(ctx): return CheckResult(result="loading")
def nonsense(ctx): return CheckResult(result="great")
def who(ctx): return CheckResult(result="success", message=ctx.daemon + " " + ctx.package_id)
@service.main
def main(ctx):
    return [make(ok), make(bad), make(odd), make(raises), make(slow, timeout=0.2), make(loading),
            make(nonsense), make(who), Daemon("none", argv=["x"])]
"""


@pytest.mark.parametrize(
    ("daemon", "result", "message"),
    [
        ("ok", "success", None),
        ("bad", "failure", "the check reported failure"),
        ("odd", "failure", "the check returned str; return a CheckResult or a bool"),
        ("raises", "failure", "KeyError: 'no such block'"),
        ("slow", "failure", "the check did not finish within 0.2 s"),
        ("loading", "loading", "the check reported loading"),
        ("nonsense", "failure", "the check returned an invalid result"),
        ("who", "success", "who pkg"),
    ],
)
def test_function_checks(tmp_path: Path, daemon: str, result: str, message: str | None) -> None:
    with loaded(tmp_path, CHECKS) as t:
        outcome = t.run_check(daemon)
    assert outcome.result == result
    assert outcome.message == message or (message is not None and (outcome.message or "").startswith(message))


def test_check_of_a_daemon_without_one(tmp_path: Path) -> None:
    with loaded(tmp_path, CHECKS) as t:
        for daemon in ("none", "nobody"):
            with pytest.raises(ServiceCallError, match="there is no health check"):
                t.run_check(daemon)


def test_tcp_check(tmp_path: Path) -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        code = (
            f"service = Service(volumes=[])\n@service.main\ndef main(ctx):\n"
            f"    return [Daemon('db', argv=['x'], ready=TcpCheck({port}, timeout=1))]\n"
        )
        with loaded(tmp_path, code) as t:
            assert t.run_check("db").result == "success"
            listener.close()
            failed = t.run_check("db")
    assert failed.result == "failure"
    assert f"port {port} on 127.0.0.1 is not accepting connections" in (failed.message or "")


# -- paths ----------------------------------------------------------------------------------------------


def test_paths_outside_a_sandbox() -> None:
    with _env.override_env({}), pytest.raises(OutsideSandboxError, match="STARTOS_VOLUMES is not set"):
        volume_path("main")


def test_paths_stay_inside_their_directory(tmp_path: Path) -> None:
    with _env.override_env({"STARTOS_VOLUMES": str(tmp_path)}):
        assert volume_path("main", "a", "b.txt") == tmp_path / "main" / "a" / "b.txt"
        for parts in (("..", "other"), ("/etc/passwd",)):
            with pytest.raises(SdkError, match="must stay inside"):
                volume_path("main", *parts)
        with pytest.raises(SdkError, match="is not a volume id"):
            volume_path("../x")


def test_hooks_only_reach_declared_volumes(tmp_path: Path) -> None:
    code = 'service = Service(volumes=["main"])\n@service.init("install")\ndef f(ctx): ctx.volume_path("other")\n'
    with loaded(tmp_path, code) as t, pytest.raises(ServiceCallError, match="volume 'other' is not declared"):
        t.run_init("install")


# -- progress -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((-1,), "done must be a whole number"),
        ((True,), "done must be"),
        ((3, 2), "done (3) is more than total (2)"),
        ((1, -2), "total must be"),
        ((1, 2, 3), "message must be a string"),
    ],
)
def test_progress_arguments(args: tuple[object, ...], message: str) -> None:
    with pytest.raises(SdkError) as caught:
        report_progress(*args)  # type: ignore[arg-type]
    assert message in str(caught.value)


def test_progress_message_is_one_short_line() -> None:
    report = _progress.make_report(None, 1, None, "line one\nline two  " + "x" * 2000)
    assert report.message is not None and report.message.startswith("line one line two x")
    assert len(report.message) == 1024


def test_progress_without_a_runtime_warns_once(capsys: pytest.CaptureFixture[str]) -> None:
    client = _progress._Client()
    with _env.override_env({}):
        _progress._client, saved = client, _progress._client
        try:
            assert report_progress(1) is False and report_progress(2) is False
        finally:
            _progress._client = saved
    assert capsys.readouterr().err.count("cannot report progress") == 1


def test_progress_through_the_effects_socket(tmp_path: Path) -> None:
    # A run directory deeper than an AF_UNIX path allows: reached through /proc/self/fd.
    run = tmp_path / ("r" * 60) / ("u" * 60)
    run.mkdir(parents=True)
    got: list[wire.ReportProgress] = []
    server = EffectsServer(run / "effects.sock", got.append, interval=0.01)
    server.start()
    try:
        saved = _progress._client
        _progress._client = _progress._Client()
        try:
            with _env.override_env({"STARTOS_RUN": str(run), "STARTOS_DAEMON": "sync"}):
                for done in range(1, 6):
                    assert report_progress(done, 5, f"{done} of 5")
        finally:
            _progress._client._close()
            _progress._client = saved
        wait_until(lambda: got and got[-1].done == 5, timeout=5, what="the last report")
        assert all(r.daemon == "sync" and r.total == 5 for r in got)
        # A bad frame only ends that connection; the server goes on.
        dirfd = os.open(run, os.O_PATH)
        try:
            with socket.socket(socket.AF_UNIX) as bad:
                bad.connect(f"/proc/self/fd/{dirfd}/effects.sock")
                bad.sendall(encode_frame({"type": "report-progress", "done": "lots"}))
                assert bad.recv(1) == b""  # closed by the server
            with socket.socket(socket.AF_UNIX) as good:
                good.connect(f"/proc/self/fd/{dirfd}/effects.sock")
                good.sendall(encode_frame(wire.ReportProgress(daemon="other", done=7)))
                wait_until(lambda: got[-1].daemon == "other", timeout=5, what="a report after the bad one")
        finally:
            os.close(dirfd)
    finally:
        server.close()
    assert not (run / "effects.sock").exists()


def test_progress_in_a_test_process_is_recorded(tmp_path: Path) -> None:
    code = """
service = Service(volumes=[])
@service.init("install")
def long(ctx):
    for n in range(3):
        ctx.report_progress(n, 2, f"step {n}")
"""
    with loaded(tmp_path, code) as t:
        t.run_init("install")
        worker = threading.Thread(target=report_progress, args=(9, None, "from a thread"))
        worker.start()
        worker.join()
        assert [(p.done, p.message) for p in t.progress] == [
            (0, "step 0"),
            (1, "step 1"),
            (2, "step 2"),
            (9, "from a thread"),
        ]


def test_testers_do_not_leak_modules_into_each_other(tmp_path: Path) -> None:
    import sys

    for n, volume in enumerate(("first", "second")):
        folder = tmp_path / f"pkg{n}"
        (folder / "python" / "shared").mkdir(parents=True)
        (folder / "python" / "shared" / "__init__.py").write_text(f"VOLUME = {volume!r}\n")
        (folder / "python" / "startos_service.py").write_text(
            "from shared import VOLUME\nfrom startos.sdk import Service\nservice = Service(volumes=[VOLUME])\n"
        )
        with ServiceTester(folder, tmp_path / f"sandbox{n}") as t:
            assert t.describe().volumes == (volume,)
        assert "shared" not in sys.modules and "startos_service" not in sys.modules
        assert str(folder / "python") not in sys.path
        assert not list(folder.rglob("__pycache__"))
