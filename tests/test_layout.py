from pathlib import Path

import models
from models.errors import ModelFileAltered, ModelFileMissing, all_error_classes

# A missing or altered model file is the server's fault, not the client's: 503, the only 5xx with a code.
SERVER_SIDE = {ModelFileMissing, ModelFileAltered}


def test_models_package_is_this_repositorys_not_a_third_party_one():
    assert Path(models.__file__).resolve().parent == Path(__file__).resolve().parents[1] / "models"


def test_every_error_has_a_unique_code_a_message_and_a_client_status():
    classes = all_error_classes()
    codes = [cls.code for cls in classes]
    assert len(codes) == len(set(codes))
    for cls in classes:
        assert cls.default_message.strip()
        assert 400 <= cls.http_status < 500 or (cls in SERVER_SIDE and cls.http_status == 503)


def test_ci_runs_make_lint_and_the_layering_contracts_are_declared() -> None:
    import tomllib

    root = Path(__file__).resolve().parents[1]
    assert "make lint" in (root / ".ci" / "run").read_text()
    contracts = tomllib.loads((root / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"]
    edges = {(tuple(c["source_modules"]), tuple(c["forbidden_modules"])) for c in contracts}
    assert (("server",), ("enrollment",)) in edges and (("server",), ("edge_client",)) in edges
    assert any(c["source_modules"] == ["edge_client"] and "server" in c["forbidden_modules"] for c in contracts)
