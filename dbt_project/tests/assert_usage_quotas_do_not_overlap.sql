{{ config(meta={"dagster": {"ref": {"name": "usage_quotas"}}}) }}
-- At most one quota per account and meter applies to a billing period (valid_to is exclusive):
-- with two, fct_usage_quotas would give the period two limits and two answers to has_access.
select first.quota_id, second.quota_id as overlapping_quota_id
from {{ ref('usage_quotas') }} as first
inner join {{ ref('usage_quotas') }} as second
    on first.account_id = second.account_id
    and first.meter_code = second.meter_code
    and first.quota_id < second.quota_id
    and first.valid_from < coalesce(second.valid_to, cast('9999-12-31' as date))
    and second.valid_from < coalesce(first.valid_to, cast('9999-12-31' as date))
