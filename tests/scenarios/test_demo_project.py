"""End to end: the demo project run by ``scripts/demo`` (what ``make demo`` runs), the same on a
``dolt sql-server`` (``scripts/demo --server``), and kedro-viz showing its Dolt tables, through
the API and in headless Chromium."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path

import pymysql
import pytest

from tests.support import ROOT
from tests.support.dolt_server import DoltServer

REPO = ROOT
KEDRO = str(Path(sys.executable).parent / "kedro")
DOLT_TABLES = [
    "raw_readings",
    "clean_readings",
    "station_features",
    "station_metrics",
    "station_report",
]


def demo_process(
    project: Path, *flags: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """``scripts/demo [flags] project``, as ``make demo`` runs it."""
    full_env = {**os.environ, "KEDRO": KEDRO, **(env or {})}
    full_env.pop("DOLT_ROOT_PATH", None)  # the demo brings its own Dolt identity
    for name in ("COLUMNS", "LINES"):  # (pytest-xdist workers set 80: log lines would wrap)
        full_env.pop(name, None)
    return subprocess.run(
        [str(REPO / "scripts" / "demo"), *flags, str(project)],
        env=full_env,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )


def run_demo(project: Path) -> str:
    result = demo_process(project)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result.stdout


def copy_demo(tmp_path_factory: pytest.TempPathFactory, name: str) -> Path:
    """A fresh copy of demo_project/ without anything a demo run made."""
    project = tmp_path_factory.mktemp(name) / "demo_project"
    shutil.copytree(
        REPO / "demo_project",
        project,
        ignore=shutil.ignore_patterns(
            "warehouse", "remote", "kedro_dolt", "dolt-server", ".dolt-home", ".viz"
        ),
    )
    return project


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """A copy of demo_project/ after the demo ran in it; returns (project, demo output)."""
    project = copy_demo(tmp_path_factory, "demo")
    return project, run_demo(project)


def demo_rows(project: Path, query: str) -> list[dict]:
    """Rows from the demo's Dolt repository, read with the demo's own Dolt identity."""
    proc = subprocess.run(
        ["dolt", "sql", "-r", "json", "-q", query],
        cwd=project / "data" / "warehouse",
        env={**os.environ, "DOLT_ROOT_PATH": str(project / ".dolt-home")},
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(proc.stdout.splitlines()[-1])["rows"]


class TestDemo:
    def test_two_runs_with_a_data_change(self, demo):
        _, out = demo
        assert_two_runs(out)

    def test_log_shows_kedro_run_ids(self, demo):
        _, out = demo
        log = out.split("== kedro dolt log")[1].split("== kedro dolt diff")[0]
        run_ids = set(re.findall(r"\d{4}-\d\d-\d\dT\d\d\.\d\d\.\d\d\.\d{3}Z", log))
        assert len(run_ids) == 2
        for node in ("ingest", "clean", "build_features", "build_metrics", "report"):
            assert log.count(f" {node} ") == 2

    def test_diff_and_changed(self, demo):
        _, out = demo
        assert re.search(r"raw_readings \(raw_readings\) \w{8}\.\.main: \+25 ~1 -0 rows", out)
        # The key and only the columns that changed, old → new (issue 19).
        assert re.search(r"modified\s+DBL\s+2026-11-03[^\n]*\s0\.2 → 5\.2", out)
        assert "kedro run --from-inputs=" in out
        assert "raw_readings" in out.split("kedro run --from-inputs=")[1].splitlines()[0]

    def test_tables_tags_lineage_and_remote(self, demo):
        project, _ = demo
        assert demo_rows(project, "SELECT COUNT(*) AS n FROM raw_readings")[0]["n"] == 75
        tags = demo_rows(project, "SELECT tag_name FROM dolt_tags")
        # One per run that saved raw_readings: the two runs, and the first incremental run
        # (an unchanged save, no commit, tagged all the same); the skipping run saves nothing.
        assert len(tags) == 3 and all(t["tag_name"].startswith("raw-") for t in tags)
        lineage = demo_rows(project, "SELECT rows_written FROM kedro_runs ORDER BY saved_at")
        assert [r["rows_written"] for r in lineage] == [48, 72]
        assert (project / "data" / "remote").is_dir()

    def test_an_incremental_rerun_skips_what_is_in_dolt(self, demo):
        project, out = demo
        sections = out.split("\n== ")
        first, second = [x for x in sections if x.startswith("kedro run --runner kedro_dolt.")]
        [plan] = [x for x in sections if x.startswith("kedro dolt plan")]
        assert "run clean: no memo" in first
        assert re.search(r"clean\s+skip\s+fresh \(memo of run ", plan)
        assert "0 to run, 5 to skip, 0 to restore." in plan
        # report reads a SQL query: versioned by the tables the query reads.
        for node in ("ingest", "clean", "build_features", "build_metrics", "report"):
            assert f"skip {node}: fresh" in second
        memos = demo_rows(
            project, "SELECT COUNT(*) AS n FROM kedro_dolt_memos AS OF 'kedro-dolt-memo'"
        )
        assert memos[0]["n"] == 5

    def test_rerun_starts_from_scratch(self, demo):
        project, _ = demo
        run_demo(project)
        saves = demo_rows(
            project, "SELECT COUNT(*) AS n FROM dolt_log WHERE message LIKE 'kedro: save%'"
        )
        # 5 Dolt table saves per run on main, minus station_features (on its own branch).
        assert saves[0]["n"] == 8
        assert demo_rows(project, "SELECT COUNT(*) AS n FROM raw_readings")[0]["n"] == 75


#: The demo user's password for the server demo (the script makes a random one without it).
SERVER_PASSWORD = f"pw-{uuid.uuid4().hex}"


@pytest.fixture(scope="module")
def server_demo(tmp_path_factory):
    """A copy of demo_project/ after ``scripts/demo --server`` ran in it: (project, stdout)."""
    project = copy_demo(tmp_path_factory, "server-demo")
    result = demo_process(project, "--server", env={"DOLT_SERVER_PASSWORD": SERVER_PASSWORD})
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert SERVER_PASSWORD not in result.stdout + result.stderr
    return project, result.stdout


def demo_servers(project: Path) -> list[int]:
    """Pids of live processes started with the demo's server config (``scripts/demo`` passes
    ``--config PROJECT/data/dolt-server/config.yaml``)."""
    config = str(project / "data" / "dolt-server" / "config.yaml").encode()
    pids = []
    for proc in Path("/proc").iterdir():
        try:
            if proc.name.isdigit() and config in (proc / "cmdline").read_bytes():
                pids.append(int(proc.name))
        except OSError:  # gone meanwhile
            continue
    return pids


@pytest.fixture(scope="module")
def served(server_demo):
    """The demo's server data, served again after the demo stopped its server, as the demo's
    user: a dict cursor in database ``warehouse``."""
    project, _ = server_demo
    with DoltServer.start(
        project / "data" / "dolt-server" / "databases",
        env={"DOLT_ROOT_PATH": str(project / ".dolt-home")},
    ) as server:
        conn = server.connect(
            user="kedro",
            password=SERVER_PASSWORD,
            database="warehouse",
            cursorclass=pymysql.cursors.DictCursor,
        )
        with conn, conn.cursor() as cursor:
            yield cursor


def assert_two_runs(out: str) -> None:
    """The demo's two runs, as its output tells them (embedded or on a server)."""
    assert out.count("Pipeline execution completed successfully") == 2
    assert re.search(
        r"Dolt: saved raw_readings -> warehouse@main \w{7}\.\.\w{7} \(\+50 ~0 -0 rows\)", out
    )
    assert re.search(
        r"Dolt: saved raw_readings -> warehouse@main \w{7}\.\.\w{7} \(\+25 ~1 -0 rows\)", out
    )
    assert "saved station_features -> warehouse@features" in out
    assert "fast-forward into main" in out and ", pushed" in out


def query(cursor, sql: str) -> list[dict]:
    cursor.execute(sql)
    return list(cursor.fetchall())


class TestServerDemo:
    def test_two_runs_on_the_server(self, server_demo):
        project, out = server_demo
        assert re.search(r"dolt sql-server \(pid \d+\) on 127\.0\.0\.1:\d+", out)
        assert_two_runs(out)
        assert "queried station_rainfall <- warehouse@HEAD" in out
        # Nothing went to the embedded repository.
        assert not (project / "data" / "warehouse").exists()
        assert (project / "data" / "remote").is_dir()

    def test_log_diff_and_changed(self, server_demo):
        _, out = server_demo
        log = out.split("== kedro dolt log --env server")[1].split("== kedro dolt diff")[0]
        run_ids = set(re.findall(r"\d{4}-\d\d-\d\dT\d\d\.\d\d\.\d\d\.\d{3}Z", log))
        assert len(run_ids) == 2
        for node in ("ingest", "clean", "build_features", "build_metrics", "report"):
            assert log.count(f" {node} ") == 2
        assert re.search(r"raw_readings \(raw_readings\) \w{8}\.\.main: \+25 ~1 -0 rows", out)
        rerun = out.split("kedro run --from-inputs=")[1].splitlines()[0]
        assert "raw_readings" in rerun

    def test_server_stopped_and_no_password_kept(self, server_demo):
        project, out = server_demo
        pid = int(re.search(r"dolt sql-server \(pid (\d+)\)", out)[1])
        assert f"Stopped the dolt sql-server (pid {pid})" in out
        assert demo_servers(project) == []
        manifests = list((project / "data" / "kedro_dolt" / "runs").glob("*.json"))
        assert len(manifests) == 2
        for manifest in manifests:
            text = manifest.read_text()
            assert "mysql://kedro@127.0.0.1:" in text and SERVER_PASSWORD not in text

    def test_server_data(self, server_demo, served):
        project, _ = server_demo
        assert query(served, "SELECT COUNT(*) AS n FROM raw_readings")[0]["n"] == 75
        features = "SELECT COUNT(*) AS n FROM `warehouse/features`.station_features"
        assert query(served, features)[0]["n"] == 72
        tags = query(served, "SELECT tag_name FROM dolt_tags")
        assert len(tags) == 2 and all(t["tag_name"].startswith("raw-") for t in tags)
        lineage = query(served, "SELECT rows_written FROM kedro_runs ORDER BY saved_at")
        assert [r["rows_written"] for r in lineage] == [48, 72]
        saves = query(
            served,
            "SELECT committer, email, message FROM dolt_log WHERE message LIKE 'kedro: save%'",
        )
        # 5 Dolt table saves per run on main, minus station_features (on its own branch).
        assert len(saves) == 8
        # The credentials' author, not the SQL user or the demo's Dolt identity.
        assert {(c["committer"], c["email"]) for c in saves} == {
            ("Weather pipeline", "pipeline@weather-stations.invalid")
        }
        runs = {re.search(r"Kedro-Run-Id: (\S+)", c["message"])[1] for c in saves}
        manifests = {p.stem for p in (project / "data" / "kedro_dolt" / "runs").glob("*.json")}
        assert runs == manifests and len(runs) == 2

    def test_failed_run_stops_the_server(self, tmp_path_factory):
        project = copy_demo(tmp_path_factory, "server-demo-fails")
        result = demo_process(project, "--server", env={"KEDRO": "false"})  # kedro run fails
        assert result.returncode != 0
        assert "Stopped the dolt sql-server" in result.stdout
        assert demo_servers(project) == []


def free_port() -> int:
    """A free loopback port below 49152 (kedro-viz refuses ephemeral ports)."""
    for port in random.sample(range(20000, 49000), 200):
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) != 0:
                # viz tries port..port+4 and takes the first free one; keep the range clear.
                return port
    raise RuntimeError("no free port between 20000 and 49000")


def get_json(url: str):
    with urllib.request.urlopen(url, timeout=30) as response:
        return json.load(response)


@pytest.fixture(scope="module")
def viz(demo):
    """``kedro viz run`` on the demo project; stopped by its process group (viz spawns a
    child that outlives its parent)."""
    project, _ = demo
    port = free_port()
    env = {
        **os.environ,
        "DOLT_ROOT_PATH": str(project / ".dolt-home"),
        "KEDRO_DISABLE_TELEMETRY": "1",
    }
    log = open(project / "viz.log", "w")  # noqa: SIM115 - closed below
    server = subprocess.Popen(
        [KEDRO, "viz", "run", "--no-browser", "--host", "127.0.0.1", "--port", str(port)],
        cwd=project,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                get_json(f"{base}/api/main")
                break
            except OSError:
                assert server.poll() is None, (project / "viz.log").read_text()[-3000:]
                assert time.monotonic() < deadline, "kedro viz did not start in 120 s"
                time.sleep(1)
        yield base
    finally:
        os.killpg(server.pid, signal.SIGTERM)  # the server and its spawned child
        server.wait(timeout=30)
        log.close()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", port)) != 0:
                    break
            time.sleep(0.5)
        else:
            pytest.fail(f"kedro viz still listens on {port} after its process group was killed")


class TestKedroViz:
    def test_api_shows_dolt_tables_with_previews(self, viz):
        nodes = {n["name"]: n for n in get_json(f"{viz}/api/main")["nodes"] if n["type"] == "data"}
        for name in DOLT_TABLES:
            assert nodes[name]["dataset_type"] == "kedro_dolt.DoltTableDataset"
        assert nodes["raw_readings"]["layer"] == "raw"
        assert nodes["station_metrics"]["layer"] == "model_input"
        for name in DOLT_TABLES:
            node_id = hashlib.sha1(name.encode()).hexdigest()[:8]
            meta = get_json(f"{viz}/api/nodes/{node_id}")
            assert meta["preview_type"] == "TablePreview"
            assert meta["preview"]["columns"][0] == "station_id"
            assert meta["preview"]["data"], name
            assert meta["filepath"].startswith(f"data/warehouse:{name}@")
        raw = get_json(f"{viz}/api/nodes/{hashlib.sha1(b'raw_readings').hexdigest()[:8]}")
        assert len(raw["preview"]["data"]) == 8  # preview_args: {nrows: 8}
        features = get_json(f"{viz}/api/nodes/{hashlib.sha1(b'station_features').hexdigest()[:8]}")
        assert features["filepath"] == "data/warehouse:station_features@features"

    def test_browser_shows_the_preview_table(self, viz, tmp_path):
        from selenium import webdriver
        from selenium.common.exceptions import WebDriverException
        from selenium.webdriver.chrome.service import Service
        from selenium.webdriver.common.by import By
        from selenium.webdriver.support.ui import WebDriverWait

        options = webdriver.ChromeOptions()
        options.binary_location = "/usr/bin/chromium"
        for arg in [
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--window-size=1600,1000",
            f"--user-data-dir={tempfile.mkdtemp(dir=tmp_path)}",
        ]:
            options.add_argument(arg)
        driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
        try:
            driver.get(viz)
            wait = WebDriverWait(driver, 60)

            def clean_readings_node(d):
                nodes = d.find_elements(By.CSS_SELECTOR, "g.pipeline-node")
                return next((n for n in nodes if n.text == "clean_readings"), False)

            def preview_shown(d):
                # A click while the graph still lays itself out can land on nothing: click
                # the node again until its preview table is there.
                if any(c.text == "De Bilt" for c in d.find_elements(By.TAG_NAME, "td")):
                    return True
                node = clean_readings_node(d)
                if node:
                    with contextlib.suppress(WebDriverException):
                        node.click()
                return False

            wait.until(clean_readings_node)
            WebDriverWait(driver, 60, poll_frequency=2).until(preview_shown)
            cells = [c.text for c in driver.find_elements(By.TAG_NAME, "td")]
            assert cells[:2] == ["DBL", "De Bilt"]
            assert "station_name" in driver.page_source
            _close_tour(driver, By)
            screenshot = tmp_path / "kedro-viz-preview.png"
            driver.save_screenshot(str(screenshot))
        finally:
            driver.quit()
        assert screenshot.stat().st_size > 10_000
        if os.environ.get("KEDRO_DOLT_SCREENSHOT"):  # refreshes docs/ (README: Development)
            shutil.copy(screenshot, os.environ["KEDRO_DOLT_SCREENSHOT"])


def _close_tour(driver, by) -> None:
    """kedro-viz greets first-time visitors with a feature tour: close it for the screenshot."""
    for text in ("Dismiss",):
        for element in driver.find_elements(by.XPATH, f"//*[normalize-space(text())='{text}']"):
            if element.is_displayed():
                element.click()
    for button in driver.find_elements(
        by.CSS_SELECTOR, "button[aria-label*='lose'], [class*='close']"
    ):
        try:
            if button.is_displayed() and "metadata" not in (button.get_attribute("class") or ""):
                button.click()
        except Exception:
            continue
    time.sleep(1)
