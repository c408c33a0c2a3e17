{#-
  Seats held per account x unique-count meter x dimension x billed period, for seat charges
  (decision 50): the holdings of int_seat_holdings summed.
    seat_count  seats held on at least one subscribed day of the period
    seat_days   the sum over seats of their held, subscribed days
-#}
select
    account_id,
    meter_code,
    dimension_value,
    period_start,
    cast(count(distinct unique_property_value) as bigint) as seat_count,
    cast(sum(held_days) as bigint) as seat_days
from {{ ref('int_seat_holdings') }}
group by account_id, meter_code, dimension_value, period_start
