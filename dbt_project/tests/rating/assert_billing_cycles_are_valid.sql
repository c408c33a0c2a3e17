{{ config(meta={"dagster": {"ref": {"name": "billing_cycles"}}}) }}
-- A billing cycle is anniversary (anchor_date) or calendar (anchor_day), not both; a month-based
-- anniversary starts on day 1-28 (every month has it), and the account's plans bill in the
-- cycle's interval (decision 56).
select cycles.account_id, 'anchor_day and anchor_date' as problem
from {{ ref('billing_cycles') }} as cycles
where cycles.anchor_day is not null and cycles.anchor_date is not null

union all

select cycles.account_id, 'anchor_date on day 29-31' as problem
from {{ ref('billing_cycles') }} as cycles
where cycles.anchor_date is not null
    and coalesce(cycles.billing_interval, 'month') != 'week'
    and {{ date_part_of('day', 'cycles.anchor_date') }} > 28

union all

select distinct subscriptions.account_id, 'plan billed by another interval' as problem
from {{ ref('subscriptions') }} as subscriptions
inner join {{ ref('price_plans') }} as plans
    on subscriptions.plan_code = plans.base_plan_code
left join {{ ref('billing_cycles') }} as cycles on subscriptions.account_id = cycles.account_id
where plans.billing_interval != coalesce(cycles.billing_interval, 'month')
