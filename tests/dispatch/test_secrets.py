"""Secret references may not name retrigger's own secrets nor leave the allowed places: checked
when a connection is saved (422 naming ``auth.secret_ref``) and again when it is used."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError
from sqlalchemy import update

from retrigger.config import Settings
from retrigger.dispatch import secrets
from retrigger.dispatch.models import Connection
from retrigger.dispatch.secrets import SecretRefused, SecretUnavailable
from retrigger.errors import InvalidConfig
from tests.dispatch.conftest import TARGET, Live, RunsApi

pytestmark = pytest.mark.asyncio(loop_scope="session")


def settings(tmp_path: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {"database_url": f"sqlite+aiosqlite:///{tmp_path / 'rt.db'}"}
    values.update(overrides)
    return Settings(**values)


def refused(ref: str, config: Settings) -> str:
    with pytest.raises(InvalidConfig) as caught:
        secrets.check_ref(ref, config)
    assert caught.value.errors[0]["loc"] == ["body", "auth", "secret_ref"]
    with pytest.raises(SecretRefused):
        secrets.resolve(ref, config)
    return caught.value.message


class TestEnvironment:
    @pytest.mark.parametrize(
        "name",
        ["RETRIGGER_CALLBACK_SECRET", "RETRIGGER_DATABASE_URL", "retrigger_bootstrap_admin_token"],
    )
    async def test_retrigger_variables_are_always_refused(self, tmp_path: Path, name: str) -> None:
        assert "RETRIGGER_*" in refused(f"env:{name}", settings(tmp_path))
        permissive = settings(tmp_path, secret_env_allow="*,RETRIGGER_*")
        refused(f"env:{name}", permissive)

    async def test_allow_patterns_narrow_the_variables(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        config = settings(tmp_path, secret_env_allow="AIRFLOW_*, PREFECT_API_KEY")
        monkeypatch.setenv("AIRFLOW_PASSWORD", "pw")
        assert secrets.check_ref("env:AIRFLOW_PASSWORD", config) == "env:AIRFLOW_PASSWORD"
        resolved = secrets.resolve("env:AIRFLOW_PASSWORD", config)
        assert resolved is not None
        assert resolved.get_secret_value() == "pw"
        secrets.check_ref("env:PREFECT_API_KEY", config)
        assert "AIRFLOW_*" in refused("env:HOME", config)
        refused("env:PREFECT_API_KEY_2", config)
        refused("env:airflow_password", config)  # patterns are case-sensitive, like variables

    async def test_by_default_any_other_variable(self, tmp_path: Path) -> None:
        secrets.check_ref("env:ANY_VARIABLE", settings(tmp_path))
        with pytest.raises(SecretUnavailable) as caught:
            secrets.resolve("env:RT_TEST_SURELY_UNSET_VARIABLE", settings(tmp_path))
        assert not isinstance(caught.value, SecretRefused)


class TestFiles:
    @pytest.mark.parametrize(
        "path", ["/proc/self/environ", "/proc/1/cmdline", "/sys/kernel/x", "/dev/mem"]
    )
    async def test_system_files_are_refused(self, tmp_path: Path, path: str) -> None:
        refused(f"file:{path}", settings(tmp_path))

    async def test_dot_dot_does_not_escape(self, tmp_path: Path) -> None:
        refused("file:/etc/../proc/self/environ", settings(tmp_path))
        allowed = tmp_path / "secrets"
        allowed.mkdir()
        config = settings(tmp_path, secret_file_dirs=str(allowed))
        refused(f"file:{allowed}/../rt.db.key", config)

    async def test_the_servers_own_files_are_refused(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        config = settings(tmp_path)
        for name in ("rt.db", "rt.db-wal"):
            assert "own" in refused(f"file:{tmp_path / name}", config)
        monkeypatch.chdir(tmp_path)
        refused(f"file:{tmp_path / '.env'}", config)

    async def test_a_symlink_to_a_refused_file_is_refused_when_saved_and_when_used(
        self, tmp_path: Path
    ) -> None:
        allowed = tmp_path / "secrets"
        allowed.mkdir()
        token = allowed / "token"
        token.write_text("t0ken\n")
        config = settings(tmp_path, secret_file_dirs=f"{allowed}/")
        secrets.check_ref(f"file:{token}", config)
        link = allowed / "link"
        link.symlink_to("/proc/self/environ")
        refused(f"file:{link}", config)
        # a reference accepted when saved, whose file became a symlink out of the directory
        token.unlink()
        token.symlink_to(tmp_path / "rt.db")
        with pytest.raises(SecretRefused):
            secrets.resolve(f"file:{token}", config)

    async def test_configured_directories_bound_files(self, tmp_path: Path) -> None:
        allowed = tmp_path / "secrets"
        allowed.mkdir()
        (allowed / "token").write_text("t0ken\n")
        outside = tmp_path / "elsewhere"
        outside.write_text("x")
        config = settings(tmp_path, secret_file_dirs=f"/run/secrets,{allowed}")
        resolved = secrets.resolve(f"file:{allowed / 'token'}", config)
        assert resolved is not None
        assert resolved.get_secret_value() == "t0ken"
        assert "RETRIGGER_SECRET_FILE_DIRS" in refused(f"file:{outside}", config)
        # without directories, any other absolute path will do
        secrets.check_ref(f"file:{outside}", settings(tmp_path))

    async def test_only_regular_files_are_read(self, tmp_path: Path) -> None:
        fifo = tmp_path / "fifo"
        os.mkfifo(fifo)
        with pytest.raises(SecretUnavailable, match="regular file"):
            secrets.resolve(f"file:{fifo}", settings(tmp_path))
        with pytest.raises(SecretUnavailable, match="regular file"):
            secrets.resolve(f"file:{tmp_path}", settings(tmp_path))


class TestSettings:
    @pytest.mark.parametrize("value", ["whsec_not base64!", "whsec_c2hvcnQ=", "short", "whsec_"])
    async def test_a_bad_callback_secret_stops_the_settings(self, value: str) -> None:
        with pytest.raises(ValidationError, match="callback_secret"):
            Settings(callback_secret=value)

    @pytest.mark.parametrize(
        "value", ["whsec_" + "QUJDREVGR0hJSktMTU5PUFFSU1RVVldY", "a-raw-secret-of-24-bytes"]
    )
    async def test_good_callback_secrets(self, value: str) -> None:
        assert Settings(callback_secret=value).callback_secret is not None

    async def test_lists_are_comma_separated_from_the_environment(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv("RETRIGGER_SECRET_ENV_ALLOW", "AIRFLOW_*, GITHUB_TOKEN")
        monkeypatch.setenv("RETRIGGER_SECRET_FILE_DIRS", "/run/secrets/, /var/run/x")
        config = Settings()
        assert config.secret_env_patterns == ("AIRFLOW_*", "GITHUB_TOKEN")
        assert config.secret_file_roots == ("/run/secrets", "/var/run/x")

    @pytest.mark.parametrize(
        "overrides",
        [{"secret_file_dirs": "run/secrets"}, {"secret_env_allow": "A B"}],
    )
    async def test_bad_lists_stop_the_settings(self, overrides: dict[str, str]) -> None:
        with pytest.raises(ValidationError):
            Settings(**overrides)


class TestApi:
    @pytest.mark.parametrize(
        "ref", ["env:RETRIGGER_CALLBACK_SECRET", "file:/proc/self/environ", "file:/dev/../sys/x"]
    )
    async def test_create_and_replace_refuse_naming_the_field(self, api: RunsApi, ref: str) -> None:
        auth = {"type": "bearer", "secret_ref": ref}
        body = {"kind": "webhook", "base_url": "http://hooks.test", "auth": auth}
        r = await api.http.post("/v1/connections", json={**body, "name": "hook"})
        assert r.status_code == 422, r.text
        assert r.json()["errors"][0]["loc"] == ["body", "auth", "secret_ref"]
        await api.connection("af")
        r = await api.http.put("/v1/connections/af", json=body)
        assert r.status_code == 422, r.text
        assert r.json()["errors"][0]["loc"] == ["body", "auth", "secret_ref"]


class TestDispatch:
    async def test_a_stored_refused_reference_is_never_resolved_nor_sent(
        self, live: Live, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv("RETRIGGER_TEST_ONLY_SECRET", "server-side-value")
        auth = {"type": "bearer", "secret_ref": "env:AIRFLOW_TOKEN"}
        await live.api.connection("airflow-local", auth=auth)
        await live.api.product(stale=False, target=TARGET)
        r = await live.api.retrain()
        assert r.status_code == 201, r.text
        run_id = int(r.json()["run_id"])
        # a row written before the rules existed, or behind the API's back
        async with live.db.session_scope() as session:
            await session.execute(
                update(Connection)
                .where(Connection.name == "airflow-local")
                .values(secret_ref="env:RETRIGGER_TEST_ONLY_SECRET")
            )
        await live.dispatcher().run_once()
        attempts = await live.attempts(run_id)
        assert [a.error_class for a in attempts] == ["secret"]
        assert attempts[0].error is not None
        assert "refused" in attempts[0].error
        assert "server-side-value" not in attempts[0].error
        assert live.fake.launched == 0
        assert live.fake.auth_headers == set()
        shown = await live.api.http.get(f"/v1/runs/{run_id}")
        assert shown.status_code == 200
        assert "server-side-value" not in shown.text
