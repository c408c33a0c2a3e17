{{ config(meta={"dagster": {"ref": {"name": "subscriptions"}}}) }}
-- An account is on one subscription at a time (ends_on is exclusive), or its days would be billed twice.
select first.subscription_id, second.subscription_id as overlapping_subscription_id
from {{ ref('subscriptions') }} as first
inner join {{ ref('subscriptions') }} as second
    on first.account_id = second.account_id
    and first.subscription_id < second.subscription_id
    and first.starts_on < coalesce(second.ends_on, cast('9999-12-31' as date))
    and second.starts_on < coalesce(first.ends_on, cast('9999-12-31' as date))
