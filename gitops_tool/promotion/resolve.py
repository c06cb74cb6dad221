"""Step 1, resolve: registry lookups only (no Git). Which version, which environment, which image."""

from __future__ import annotations

from dataclasses import dataclass

from gitops_tool.config import Config, Model
from gitops_tool.errors import GitopsError, UsageError
from gitops_tool.kustomize.release import ImageRef, parse_image
from gitops_tool.registry import ModelRef, ModelVersion, RegistryClient, parse_ref

IMAGE_TAGS = ("image", "image_digest", "image.digest")  # set on the version by the build, digest preferred


@dataclass(frozen=True)
class Target:
    model: Model
    ref: ModelRef
    env: str
    version: ModelVersion
    image: ImageRef | None
    storage_uri: str | None

    @property
    def image_text(self) -> str | None:
        return str(self.image) if self.image else None


def alias_map_text(model: Model) -> str:
    return ", ".join(f"@{alias} -> {env}" for alias, env in model.aliases.items())


def pick_env(cfg: Config, model: Model, ref: ModelRef, env_override: str | None) -> str:
    if env_override:
        return cfg.env(env_override).name
    if ref.alias is None:
        raise UsageError(
            f"{ref}: a version reference needs --env (alias map of {model.name}: {alias_map_text(model)})"
        )
    env = model.env_for_alias(ref.alias)
    if env is None:
        raise GitopsError(
            f"alias @{ref.alias} of model {model.name} maps to no environment in {cfg.source} "
            f"(alias map: {alias_map_text(model)})",
            hint="add it under models.<name>.aliases, or pass --env",
        )
    return env


def pick_image(model: Model, version: ModelVersion, image_tag: str | None) -> ImageRef:
    """--image-tag, then the image the build recorded on the version, then the template."""
    if image_tag:
        if image_tag.startswith("sha256:"):
            return parse_image(f"{_repository(model, version)}@{image_tag}")
        if "/" in image_tag or "@" in image_tag:
            return parse_image(image_tag)
        return parse_image(f"{_repository(model, version)}:{image_tag}")
    recorded = [version.tags[key] for key in IMAGE_TAGS if version.tags.get(key)]
    digests = [ref for ref in recorded if "@sha256:" in ref]
    if digests or recorded:
        try:
            return parse_image((digests or recorded)[0])
        except GitopsError as exc:
            raise GitopsError(f"model {version.name} version {version.version}: tag 'image': {exc}") from None
    text = model.image_template.format(repository=_repository(model, version), version=version.version,
                                       model=model.name, run_id=version.run_id or "")
    return parse_image(text)


def _repository(model: Model, version: ModelVersion) -> str:
    if not model.image_repository:
        raise GitopsError(f"model {model.name} has no image_repository in gitops.yaml (needed for version "
                          f"{version.version} in image mode)")
    return model.image_repository


def storage_uri(cfg: Config, client: RegistryClient, version: ModelVersion) -> str:
    """Where KServe's storage-initializer downloads the model: the bucket path behind the proxy URI."""
    uri = client.get_download_uri(version.name, version.version)
    if uri.startswith("mlflow-artifacts:/"):
        return f"s3://{cfg.mlflow['artifacts_bucket']}/{uri.removeprefix('mlflow-artifacts:/').lstrip('/')}"
    return uri


def resolve(cfg: Config, client: RegistryClient, ref_text: str, *, env: str | None = None,
            image_tag: str | None = None) -> Target:
    ref = parse_ref(ref_text)
    model = cfg.model(ref.model)
    target_env = pick_env(cfg, model, ref, env)
    version = client.resolve(ModelRef(model.registered_model, ref.alias, ref.version))
    if model.mode == "image":
        return Target(model, ref, target_env, version, pick_image(model, version, image_tag), None)
    return Target(model, ref, target_env, version, None, storage_uri(cfg, client, version))
