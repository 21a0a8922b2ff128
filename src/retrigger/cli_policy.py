"""``retrigger policy``: policies as code against a running server (apply, diff, export)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:
    import httpx

policy_app = typer.Typer(
    help="Policies as code: apply a folder of policy files, diff it, export what is live.",
    no_args_is_help=True,
)

UrlOption = Annotated[
    str,
    typer.Option("--url", envvar="RETRIGGER_URL", help="retrigger server [RETRIGGER_URL]."),
]
TokenOption = Annotated[
    str | None,
    typer.Option("--token", envvar="RETRIGGER_TOKEN", help="API key [RETRIGGER_TOKEN]."),
]
PathOption = Annotated[
    Path, typer.Option("-f", "--file", help="A policy file or a folder of them (YAML/JSON).")
]


def _client(url: str, token: str | None) -> httpx.Client:
    import httpx

    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.Client(base_url=url.rstrip("/"), headers=headers, timeout=30.0)


def _fail_on_problem(response: httpx.Response) -> None:
    if response.status_code < 400:
        return
    try:
        body = response.json()
    except ValueError:
        typer.echo(f"error {response.status_code}: {response.text[:500]}", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"error {response.status_code}: {body.get('detail', '')}", err=True)
    for err in body.get("errors") or []:
        loc = ".".join(str(p) for p in err.get("loc", []))
        typer.echo(f"  {loc}: {err.get('msg')}", err=True)
    raise typer.Exit(1)


def _load(path: Path) -> list[dict[str, Any]]:
    from retrigger.errors import InvalidConfig
    from retrigger.policies import load_bundle

    try:
        bundle = load_bundle(path)
    except FileNotFoundError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from None
    except InvalidConfig as exc:
        typer.echo(f"invalid policy files: {exc.message}", err=True)
        for err in exc.errors:
            where = err.get("file") or ""
            loc = ".".join(str(p) for p in err.get("loc", []))
            typer.echo(f"  {where} {loc}: {err.get('msg')}", err=True)
        raise typer.Exit(1) from None
    return [document.to_dict() for document in bundle.documents]


def _print_plan(plan: dict[str, Any], *, changes_only: bool = False) -> None:
    for item in plan["items"]:
        action = item["action"]
        if changes_only and action == "unchanged":
            continue
        versions = (
            f"v{item['to_version']}"
            if item["from_version"] is None
            else f"v{item['from_version']} -> v{item['to_version']}"
        )
        typer.echo(f"{action:9} {item['kind']:15} {item['name']:30} {versions}")
        for change in item["changes"]:
            if change["op"] == "add":
                typer.echo(f"    + {change['path']}: {change['new']!r}")
            elif change["op"] == "remove":
                typer.echo(f"    - {change['path']}: {change['old']!r}")
            else:
                typer.echo(f"    ~ {change['path']}: {change['old']!r} -> {change['new']!r}")


def _post_bundle(
    url: str, token: str | None, documents: list[dict[str, Any]], reason: str, dry_run: bool
) -> dict[str, Any]:
    with _client(url, token) as http:
        response = http.post(
            "/v1/policies:apply",
            params={"dry_run": str(dry_run).lower()},
            json={"documents": documents, "change_reason": reason},
        )
    _fail_on_problem(response)
    result: dict[str, Any] = response.json()
    return result


@policy_app.command("apply")
def apply(
    path: PathOption,
    url: UrlOption = "http://127.0.0.1:8000",
    token: TokenOption = None,
    reason: Annotated[
        str | None, typer.Option("-m", "--reason", help="Why: stored with every new version.")
    ] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Show the plan only.")] = False,
) -> None:
    """Apply every policy document under PATH: all of them, or none if one is invalid."""
    documents = _load(path)
    why = reason or f"retrigger policy apply -f {path}"
    plan = _post_bundle(url, token, documents, why, dry_run)
    _print_plan(plan)
    counts: dict[str, int] = {}
    for item in plan["items"]:
        counts[item["action"]] = counts.get(item["action"], 0) + 1
    summary = ", ".join(f"{n} {a}" for a, n in sorted(counts.items()))
    typer.echo(f"{'plan' if dry_run else 'applied'}: {summary}")


@policy_app.command("diff")
def diff_(
    path: PathOption,
    url: UrlOption = "http://127.0.0.1:8000",
    token: TokenOption = None,
) -> None:
    """What applying PATH would change on the server (exit code 1 when something would)."""
    plan = _post_bundle(url, token, _load(path), "diff", True)
    _print_plan(plan, changes_only=True)
    if any(item["action"] != "unchanged" for item in plan["items"]):
        raise typer.Exit(1)
    typer.echo("no changes")


@policy_app.command("export")
def export(
    url: UrlOption = "http://127.0.0.1:8000",
    token: TokenOption = None,
    output: Annotated[
        Path | None,
        typer.Option("-o", "--output", help="Folder to write templates/ and products/ into."),
    ] = None,
) -> None:
    """Export live templates and product policies as policy files (stdout or a folder)."""
    from retrigger.policies import dump_documents

    documents: list[dict[str, Any]] = []
    with _client(url, token) as http:
        templates = http.get("/v1/policy-templates")
        _fail_on_problem(templates)
        for template in templates.json():
            latest = http.get(f"/v1/policy-templates/{template['name']}")
            _fail_on_problem(latest)
            documents.append(_document("PolicyTemplate", template["name"], latest.json()["spec"]))
        cursor: str | None = None
        while True:
            page = http.get(
                "/v1/products", params={"limit": 500, **({"cursor": cursor} if cursor else {})}
            )
            _fail_on_problem(page)
            for product in page.json()["items"]:
                policy = http.get(f"/v1/products/{product['name']}/policy")
                if policy.status_code == 404:
                    continue
                _fail_on_problem(policy)
                documents.append(_document("ProductPolicy", product["name"], policy.json()["spec"]))
            cursor = page.json()["next_cursor"]
            if cursor is None:
                break
    if output is None:
        typer.echo(dump_documents(documents), nl=False)
        return
    for document in documents:
        folder = output / ("templates" if document["kind"] == "PolicyTemplate" else "products")
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{document['name']}.yaml").write_text(dump_documents([document]))
    typer.echo(f"wrote {len(documents)} documents under {output}")


def _document(kind: str, name: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {"api_version": "retrigger/v1", "kind": kind, "name": name, "spec": spec}
