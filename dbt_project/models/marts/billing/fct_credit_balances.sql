{#-
  Roll-forward of prepaid credits per account, currency and month with activity:
  opening + granted - drawn - expired = closing (the closing balance is the next opening).
-#}
with movements as (
    select
        account_id,
        currency,
        {{ month_start('movement_on') }} as month_start,
        movement_type,
        amount
    from {{ ref('fct_credit_movements') }}
),

months as (
    select
        account_id,
        currency,
        month_start,
        sum(case when movement_type = 'granted' then amount else 0 end) as granted,
        -sum(case when movement_type = 'drawn' then amount else 0 end) as drawn,
        -sum(case when movement_type = 'expired' then amount else 0 end) as expired,
        sum(amount) as net_change
    from movements
    group by account_id, currency, month_start
)

select
    account_id,
    currency,
    month_start,
    cast(sum(net_change) over (
        partition by account_id, currency order by month_start
        rows between unbounded preceding and current row
    ) - net_change as {{ money_type() }}) as opening_balance,
    cast(granted as {{ money_type() }}) as granted,
    cast(drawn as {{ money_type() }}) as drawn,
    cast(expired as {{ money_type() }}) as expired,
    cast(sum(net_change) over (
        partition by account_id, currency order by month_start
        rows between unbounded preceding and current row
    ) as {{ money_type() }}) as closing_balance
from months
