"""``modelyard <noun> <verb>``: one module per noun; the logic lives in the packages."""

from __future__ import annotations

from typing import Any

import click
import httpx
from pydantic import ValidationError
from sqlalchemy.exc import OperationalError

from modelyard import __version__
from modelyard.backup.errors import BackupError
from modelyard.bootstrap import DefaultModelMissing
from modelyard.engines import EngineError
from modelyard.evaluate.breakdown import InvalidSlice
from modelyard.evaluate.compare import NotComparable
from modelyard.evaluate.contamination import TrainEvalOverlap
from modelyard.evaluate.datasets import DatasetNotFound, InvalidDataset
from modelyard.evaluate.fairness import FairnessRefused
from modelyard.evaluate.redteam.summary import NotARedTeamRun
from modelyard.evaluate.robustness.apply import PerturbationFailed
from modelyard.evaluate.robustness.report import NotACleanRun
from modelyard.evaluate.runs import RunNotFound
from modelyard.evaluate.tasks import TaskError
from modelyard.guard.crypto import ContentKeyError
from modelyard.guard.errors import GuardError
from modelyard.improve.compress.errors import CompressionNotFound, InvalidCompression
from modelyard.improve.curate import NothingToCurate
from modelyard.improve.distil.errors import (
    DistillationNotFound,
    GatewayFailed,
    InvalidDistillation,
    InvalidLabelling,
    LabelRunActive,
    LabelRunNotFound,
)
from modelyard.improve.export.errors import FineTuneError
from modelyard.improve.language import UnknownLanguage
from modelyard.improve.review.errors import ReviewError
from modelyard.improve.tune.errors import TuneError
from modelyard.improve.versions import NotCurated
from modelyard.observe.alerts import AlertError
from modelyard.observe.drift_jobs import DriftReportNotFound, NotEnoughData
from modelyard.observe.quality.judgements import QualityWindowRefused
from modelyard.observe.queries import RequestNotFound
from modelyard.observe.tracing import TracingMisconfigured
from modelyard.observe.userdata import InvalidUser, UserNotFound
from modelyard.registry import RegistryError
from modelyard.release.errors import ReleaseError
from modelyard.routing.policies import PolicyRefused

# User mistakes and unreachable services: one line on stderr, exit 1, no traceback.
USER_ERRORS = (
    RegistryError,
    ReleaseError,
    PolicyRefused,
    RequestNotFound,
    UserNotFound,
    InvalidUser,
    NotEnoughData,
    DriftReportNotFound,
    QualityWindowRefused,
    GuardError,
    AlertError,
    TaskError,
    RunNotFound,
    DatasetNotFound,
    InvalidDataset,
    NotComparable,
    NotACleanRun,
    NotARedTeamRun,
    PerturbationFailed,
    InvalidSlice,
    FairnessRefused,
    TrainEvalOverlap,
    NothingToCurate,
    UnknownLanguage,
    NotCurated,
    InvalidLabelling,
    LabelRunNotFound,
    LabelRunActive,
    InvalidDistillation,
    DistillationNotFound,
    GatewayFailed,
    TuneError,
    FineTuneError,
    ReviewError,
    InvalidCompression,
    CompressionNotFound,
    BackupError,
    ContentKeyError,
    EngineError,
    DefaultModelMissing,
    TracingMisconfigured,
    httpx.HTTPError,
    OperationalError,
    ValidationError,
)


class ModelyardGroup(click.Group):
    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except USER_ERRORS as error:
            message = str(error).splitlines()[0] if str(error) else type(error).__name__
            if isinstance(error, ValidationError):
                first = error.errors()[0]
                where = ".".join(str(part) for part in first["loc"])
                message = f"invalid {where}: {first['msg'].removeprefix('Value error, ')}"
            if isinstance(error, OperationalError):
                message = f"cannot reach the database: {error.orig}"
            raise click.ClickException(message) from None


@click.group(cls=ModelyardGroup)
@click.version_option(__version__, prog_name="modelyard")
def main() -> None:
    """modelyard: an OpenAI-compatible API, model registry and console for your models."""


def _register() -> None:
    from modelyard.cli import (
        alert,
        alias,
        audit,
        backup,
        chat,
        compress,
        content,
        curate,
        datasets,
        distil,
        drift,
        eval_suites,
        experiment,
        finetune,
        keys,
        label,
        models,
        policy,
        requests,
        review,
        rollout,
        route,
        serve,
        traces,
        tune,
        usage,
        user,
    )

    main.add_command(serve.serve)
    main.add_command(chat.chat)
    main.add_command(models.models)
    main.add_command(alias.alias)
    main.add_command(keys.keys)
    main.add_command(policy.policy)
    main.add_command(usage.usage)
    main.add_command(audit.audit)
    main.add_command(content.content)
    main.add_command(backup.backup)
    main.add_command(backup.restore_command)
    main.add_command(alert.alert)
    main.add_command(requests.requests)
    main.add_command(user.user)
    main.add_command(drift.drift)
    main.add_command(traces.traces)
    main.add_command(eval_suites.eval_group)
    main.add_command(datasets.datasets)
    main.add_command(curate.curate)
    main.add_command(label.label_command)
    main.add_command(distil.distil_command)
    main.add_command(compress.compress)
    main.add_command(finetune.finetune)
    main.add_command(tune.tune)
    main.add_command(review.review)
    main.add_command(route.route)
    main.add_command(rollout.rollout)
    main.add_command(experiment.experiment)


def _register_quality() -> None:
    from modelyard.cli import quality

    main.add_command(quality.quality)


_register()
_register_quality()
