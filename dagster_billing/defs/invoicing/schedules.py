"""What keeps the bills fresh: continuous rating of the current day, a daily close attempt for
the last billing period (a no-op until its grace period has passed, and after it is final), and
webhook delivery."""

from datetime import UTC, datetime, timedelta

import dagster as dg

from dagster_billing.defs.dbt.partitions import BILLING_PERIOD_PARTITIONS, USAGE_DAY_PARTITIONS
from dagster_billing.defs.jobs import billing_pipeline, close_billing_period, deliver_webhooks


def _scheduled_time(context: dg.ScheduleEvaluationContext) -> datetime:
    moment = context.scheduled_execution_time or datetime.now(UTC)
    return moment.astimezone(UTC)


@dg.schedule(job=billing_pipeline, cron_schedule="*/15 * * * *", execution_timezone="UTC")
def continuous_rating(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
    """Every 15 minutes: land new usage, restate today (and any day that received late events),
    recalculate every draft invoice and its run-rate."""
    today = _scheduled_time(context).strftime(USAGE_DAY_PARTITIONS.fmt)
    return dg.RunRequest(partition_key=today)


@dg.schedule(job=close_billing_period, cron_schedule="30 1 * * *", execution_timezone="UTC")
def period_close(context: dg.ScheduleEvaluationContext) -> dg.RunRequest | dg.SkipReason:
    """Daily: try to close the last complete billing period. Drafts become final only once the
    period's grace has passed (dbt var finalization_grace_days); until then, and after, the run
    books nothing new except credit notes for late usage."""
    now = _scheduled_time(context)
    last_period_start = (now.replace(day=1) - timedelta(days=1)).replace(day=1)
    partition = last_period_start.strftime(BILLING_PERIOD_PARTITIONS.fmt)
    if not BILLING_PERIOD_PARTITIONS.has_partition_key(partition):
        return dg.SkipReason(f"no billing period {partition} yet")
    return dg.RunRequest(partition_key=partition, run_key=f"{partition}@{now:%Y-%m-%d}")


@dg.schedule(job=deliver_webhooks, cron_schedule="*/5 * * * *", execution_timezone="UTC")
def webhook_delivery() -> dg.RunRequest:
    """Every 5 minutes: deliver pending webhooks (delivered events are never re-sent)."""
    return dg.RunRequest()
