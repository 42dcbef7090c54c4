"""The `exclude` patterns: which paths the default keeps away from every engine, and how patterns match."""

from __future__ import annotations

import pytest

from fim_lsp.config import parse_settings
from fim_lsp.exclusions import DEFAULT_EXCLUDE, Exclusions, check_patterns

DEFAULT = Exclusions()


@pytest.mark.parametrize(
    "path",
    [
        ".env",
        "service/.env",
        ".env.local",
        ".env.example",
        "deploy/prod.env",
        ".envrc",
        "certs/server.pem",
        "tls/server.key",
        "config/master.key",
        "client.p12",
        "client.pfx",
        "AuthKey_ABC123.p8",
        "putty.ppk",
        "android/release.keystore",
        "java/truststore.jks",
        "id_rsa",
        "id_rsa.pub",
        "keys/id_ed25519",
        "id_ecdsa",
        "home/.ssh/config",
        "home/.ssh/known_hosts.py",
        ".gnupg/pubring.kbx",
        ".npmrc",
        ".pypirc",
        ".netrc",
        ".git-credentials",
        ".pgpass",
        ".htpasswd",
        "composer/auth.json",
        ".aws/credentials",
        ".aws/config",
        ".docker/config.json",
        ".kube/config",
        "gcp/service-account.json",
        "gcp/my_service_account_key.json",
        "infra/prod.tfvars",
        "infra/terraform.tfstate",
        "infra/terraform.tfstate.backup",
        "secrets.py",
        "app/secrets.yaml",
        "app/client_secret.json",
        "k8s/secrets/db.yaml",
        "config/credentials.yml.enc",
        "aws_credentials.py",
        # Any case: on a case-insensitive file system these are the same files.
        "Secrets.swift",
        ".ENV",
        "Certs/Server.PEM",
    ],
)
def test_the_default_excludes(path: str) -> None:
    assert DEFAULT.matches(path), path


@pytest.mark.parametrize(
    "path",
    [
        "settings.py",
        "app/environment.py",
        "src/envelope.ts",
        "keys.py",
        "keyboard.go",
        "monkey.rs",
        "README.md",
        "docs/ssh.md",
        "src/auth.py",
        "src/authentication.json",
        "infra/main.tf",
        "package.json",
        ".gitignore",
    ],
)
def test_the_default_keeps(path: str) -> None:
    assert not DEFAULT.matches(path), path


def test_a_path_is_judged_relative_to_its_workspace_folder() -> None:
    anchored = Exclusions(["config/prod.yml"])
    assert anchored.excludes("/work/app/config/prod.yml", "/work/app")
    assert not anchored.excludes("/work/app/src/config/prod.yml", "/work/app")


def test_a_path_outside_every_folder_is_judged_by_its_names() -> None:
    assert DEFAULT.excludes("/home/user/.ssh/id_rsa", None)
    assert DEFAULT.excludes("/tmp/scratch/.env", "/work/app")  # not under the folder
    assert not DEFAULT.excludes("/tmp/scratch/main.py", "/work/app")


def test_a_folder_that_matches_excludes_everything_under_it() -> None:
    rules = Exclusions(["private/"])
    assert rules.matches("private", is_dir=True)
    assert rules.matches("a/private/deep/file.py")
    assert not rules.matches("a/private.py")


def test_negation_takes_a_file_back() -> None:
    rules = Exclusions([".env.*", "!.env.example"])
    assert rules.matches(".env.local")
    assert not rules.matches(".env.example")


def test_an_empty_list_excludes_nothing() -> None:
    assert not Exclusions([]).matches(".env")


@pytest.mark.parametrize("bad", ["\\", "!", 3])
def test_a_bad_pattern_is_named(bad: object) -> None:
    with pytest.raises(ValueError, match="pattern"):
        check_patterns(["*.pem", bad])  # type: ignore[list-item]


def test_the_setting_defaults_to_the_safe_list_and_keeps_it_over_a_bad_value() -> None:
    settings, problems = parse_settings({})
    assert settings.exclude == DEFAULT_EXCLUDE and problems == []
    settings, problems = parse_settings({"exclude": ["*.pem", "\\"]})
    assert settings.exclude == DEFAULT_EXCLUDE
    assert len(problems) == 1 and "exclude" in problems[0] and "'\\\\'" in problems[0]
    settings, problems = parse_settings({"exclude": ["*.secret"]})
    assert settings.exclude == ("*.secret",) and problems == []


def test_exclusions_compare_by_their_patterns() -> None:
    assert Exclusions(["a"]) == Exclusions(["a"]) != Exclusions(["b"])


def test_the_one_regex_matches_as_the_patterns_one_by_one() -> None:
    """Without `!` patterns the patterns are matched as one regular expression: the same answers."""
    paths = [
        ".env",
        "a/.env.local",
        "a/b/prod.env",
        "x/.ssh/config",
        "x/.ssh",
        "keys.py",
        "id_rsa.pub",
        "src/secret_santa.py",
        "terraform.tfstate.backup",
        "main.tf",
        "gcp/service_account.json",
        "ok/file.go",
        "auth.json.bak",
    ]
    for path in paths:
        for is_dir in (False, True):
            suffix = "/" if is_dir else ""
            assert DEFAULT.matches(path, is_dir) == DEFAULT._spec.match_file(path + suffix), (path, is_dir)
