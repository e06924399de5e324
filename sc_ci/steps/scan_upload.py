"""DefectDojo upload for the scan step (AC-4.5): one uploader per run, each scanner's raw report of each image
imported (then reimported) into that image's own test; a failure warns unless `failOnError`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from sc_ci.engine.policy import RequiredFailed
from sc_ci.errors import ScError
from sc_ci.log import get_logger
from sc_ci.services import defectdojo

if TYPE_CHECKING:
    from sc_ci.engine.context import RunContext

log = get_logger("defectdojo")


def uploader(ctx: RunContext) -> defectdojo.Uploader:
    """The run's uploader from `security.scan.upload.defectdojo` (the API key resolved as a masked secret)."""
    config = ctx.security.scan.upload.defectdojo
    runtime = ctx.session.loaded.runtime
    product = config.product_name or runtime.stack or (ctx.session.images[0].repository if ctx.session.images
                                                        else "sc-ci")
    engagement = config.engagement_name or (f"sc-ci {runtime.version}" if runtime.version else "sc-ci")
    key = ctx.session.loaded.secret("scan.upload.defectdojo.apiKey")
    return defectdojo.Uploader(str(config.url), key, product_name=product, engagement_name=engagement,
                               auto_create_context=config.auto_create_context,
                               product_type_name=config.product_type_name, tags=config.tags,
                               verify_tls=config.verify_tls)


def upload(ctx: RunContext, client: defectdojo.Uploader, image: str, raw: Mapping[str, bytes]) -> str:
    """Upload each scanner's report; the line for the summary. Raises (fails the scan) only under
    failOnError."""
    done: list[str] = []
    failed: list[ScError] = []
    ci = ctx.session.ci
    for scanner, data in sorted(raw.items()):
        try:
            result = client.upload(data, scan_type=defectdojo.scan_type_for(scanner), image=image,
                                   version=ctx.session.loaded.runtime.version, build_id=ci.run_id,
                                   commit_hash=ci.commit, branch_tag=ci.ref)
        except ScError as exc:
            failed.append(exc)
            log.warning("DefectDojo upload of the %s report of %s failed: %s", scanner, image, exc.what)
            continue
        done.append(f"{scanner} {result.action.value} test {result.test_id}")
    if failed and ctx.security.scan.upload.defectdojo.fail_on_error:
        first = failed[0]
        raise RequiredFailed(f"{image}: DefectDojo upload failed: {first.what}", why=first.why, fix=first.fix)
    return "; ".join(done + [f"failed: {e.what}" for e in failed])
