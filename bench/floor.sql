-- The floor: what the billing pipeline computes, hand-written as one DuckDB script that reads the
-- landing files directly. No Python per row, no intermediate tables on disk, no tests: the best
-- this machine can do for the same answer. bench/floor.py fills the @placeholders@ and reads
-- floor_invoices and floor_outcomes back.
--
-- Same rules as the pipeline (docs/decisions.md): files in name order are the arrival order;
-- structural checks and their reason priority as in defs/ingest/schemas.py; unknown meter/account
-- against the seeds; first arrival per uniqueId wins; aggregation per account x meter x dimension
-- (and '*') x UTC month; rating of the sample plans' price models (below); half-up rounding
-- once per line; invoice total = sum of its lines.

set TimeZone = 'UTC';

create table files as
select file, row_number() over (order by file) as file_seq
from (select unnest(@all_files@::varchar[]) as file);

-- One row per non-blank line / CSV record, all text, with its arrival position.
create view landed as
with ndjson_lines as (
    select filename as file, ordinality as line_no, line
    from read_csv(
        @ndjson_files@, columns = {'line': 'varchar'}, delim = chr(0), quote = '', escape = '',
        header = false, filename = true, auto_detect = false
    ) with ordinality
    where regexp_matches(line, '\S')
),

ndjson_objects as (
    select
        file,
        line_no,
        json_valid(line) and regexp_matches(line, '^\s*\{') as is_object,
        line
    from ndjson_lines
),

ndjson_rows as (
    select
        file,
        line_no,
        case when not is_object then 'malformed_json' end as parse_error,
        f[1] as unique_id,
        f[2] as account_id,
        f[3] as meter_code,
        f[4] as value_text,
        f[5] as ts_text,
        nullif(f[6], '') as properties_text
    from (
        select
            file,
            line_no,
            is_object,
            case when is_object then json_extract_string(
                line, ['$.uniqueId', '$.account', '$.meter', '$.value', '$.ts', '$.properties']
            ) end as f
        from ndjson_objects
    )
),

csv_rows as (
    select
        filename as file,
        ordinality as line_no,
        cast(null as varchar) as parse_error,
        nullif("uniqueId", '') as unique_id,
        nullif(account, '') as account_id,
        nullif(meter, '') as meter_code,
        nullif(value, '') as value_text,
        nullif(ts, '') as ts_text,
        nullif(properties, '') as properties_text
    from @csv_source@
),

all_rows as (
    select * from ndjson_rows
    union all
    select * from csv_rows
)

select
    files.file_seq,
    all_rows.line_no,
    coalesce(
        all_rows.parse_error,
        case
            when properties_text is not null
                and not (json_valid(properties_text) and regexp_matches(properties_text, '^\s*\{'))
                then 'invalid_properties'
        end
    ) as parse_error,
    unique_id,
    account_id,
    meter_code,
    value_text,
    ts_text,
    case when properties_text != '{}' then properties_text end as properties
from all_rows
inner join files on all_rows.file = files.file;

create view typed as
select
    *,
    try_cast(value_text as decimal(38, 10)) as value,
    try_cast(value_text as decimal(38, 20)) as value_wide,
    case
        when regexp_full_match(
            ts_text, '\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}(:?\d{2})?)'
        ) then cast(try_cast(ts_text as timestamptz) as timestamp)
    end as event_ts
from landed;

create table meters as
select * from read_csv('@seeds@/meters.csv', header = true, all_varchar = true);

create table accounts as
select * from read_csv('@seeds@/accounts.csv', header = true, all_varchar = true);

-- Every row's outcome: the first reason in the pipeline's priority order, else a candidate.
create table classified as
select
    unique_id,
    account_id,
    meter_code,
    value,
    event_ts,
    properties,
    file_seq,
    line_no,
    case
        when parse_error is not null then parse_error
        when unique_id is null or not regexp_matches(unique_id, '\S') then 'missing_id'
        when length(unique_id) > 255 then 'id_too_long'
        when account_id is null then 'missing_account'
        when meter_code is null then 'missing_meter'
        when value_text is null then 'missing_value'
        when value is null then 'non_numeric_value'
        when value_wide is not null and cast(value as decimal(38, 20)) != value_wide
            then 'value_too_precise'
        when value < 0 then 'negative_value'
        when ts_text is null then 'missing_timestamp'
        when event_ts is null then 'bad_timestamp'
        when event_ts > cast(now() as timestamp) + interval 5 minute then 'future_timestamp'
        when meter_code not in (select meter_code from meters) then 'unknown_meter'
        when account_id not in (select account_id from accounts) then 'unknown_account'
    end as reason
from typed;

-- Later arrivals of a uniqueId (the window sees only the key columns), then everything else.
create table duplicates as
select unique_id, file_seq, line_no
from classified
where reason is null
qualify row_number() over (partition by unique_id order by file_seq, line_no) > 1;

create table accepted as
select
    classified.account_id,
    classified.meter_code,
    meters.aggregation,
    coalesce(json_extract_string(classified.properties, '$.' || meters.dimension_key), '*')
        as dimension_value,
    json_extract_string(classified.properties, '$.' || meters.unique_property)
        as unique_property_value,
    classified.value,
    classified.event_ts,
    cast(date_trunc('month', classified.event_ts) as date) as period_start,
    classified.file_seq,
    classified.line_no
from classified
anti join duplicates using (unique_id, file_seq, line_no)
inner join meters on classified.meter_code = meters.meter_code
where classified.reason is null;

create table floor_outcomes as
select 'accepted' as outcome, cast(null as varchar) as reason, count(*) as row_count
from accepted
union all
select 'duplicate', null, count(*) from duplicates
union all
select 'quarantined', reason, count(*)
from classified where reason is not null group by reason;

-- Events at both grains: their own dimension value, and '*' (all values) for dimensioned meters.
create view by_grain as
select * from accepted
union all
select * replace ('*' as dimension_value) from accepted where dimension_value != '*';

-- value x seconds held until the next snapshot (or the period end), for time-weighted meters only.
create table held as
with snapshots as (
    select
        account_id,
        meter_code,
        dimension_value,
        period_start,
        value * date_diff(
            'second',
            event_ts,
            coalesce(
                lead(event_ts) over (
                    partition by account_id, meter_code, dimension_value, period_start
                    order by event_ts, file_seq, line_no
                ),
                cast(period_start + interval 1 month as timestamp)
            )
        ) as value_seconds
    from by_grain
    where aggregation = 'time_weighted_sum'
)

select account_id, meter_code, dimension_value, period_start, sum(value_seconds) as value_seconds
from snapshots
group by all;

create table usage as
with aggregated as (
    select
        account_id,
        meter_code,
        dimension_value,
        period_start,
        any_value(aggregation) as aggregation,
        count(*) as event_count,
        sum(value) as sum_value,
        max(value) as max_value,
        count(distinct unique_property_value) as unique_count,
        arg_max(value, (event_ts, file_seq, line_no)) as latest_value
    from by_grain
    group by all
)

select
    aggregated.account_id,
    aggregated.meter_code,
    aggregated.dimension_value,
    aggregated.period_start,
    cast(
        case aggregated.aggregation
            when 'sum' then sum_value
            when 'count' then event_count
            when 'max' then max_value
            when 'unique_count' then unique_count
            when 'latest' then latest_value
            -- value_seconds / 3600 to 10 places, half-up, in exact integer arithmetic.
            when 'time_weighted_sum' then
                cast(
                    (cast(held.value_seconds * 10000000000 as hugeint) + 1800) // 3600
                    as decimal(38, 0)
                ) * cast(0.0000000001 as decimal(11, 10))
        end
    as decimal(38, 10)) as quantity,
    event_count
from aggregated
left join held using (account_id, meter_code, dimension_value, period_start);

-- Rating (docs/decisions.md 17-24), for what the sample plans use: per_unit (with free units),
-- matrix prices per dimension value, graduated and volume tiers with flat fees, seats (distinct
-- count, or seat-days with proration: daily), flat recurring fees (in advance / in arrears,
-- prorated by billable days, trials), plan commitments (committed-spend discount and minimum
-- with true-up). bench/floor.py refuses seeds that need more (see FLOOR_SCOPE there): one
-- subscription per account, one version per plan, no account overrides, no package or
-- percentage charges, no group_by / default prices, no per-charge discount / minimum / maximum.

-- amount x part / whole to 10 places, half-up, exactly (the duckdb__divide_decimal macro).
create macro divide_decimal(numerator, denominator) as cast(
    cast(
        (cast(cast(numerator as decimal(38, 10)) * 10000000000 as hugeint) * 10000000000 * 2
            + cast(cast(denominator as decimal(38, 10)) * 10000000000 as hugeint))
        // (cast(cast(denominator as decimal(38, 10)) * 10000000000 as hugeint) * 2)
    as decimal(38, 0)) * cast(0.0000000001 as decimal(11, 10))
as decimal(38, 10));

-- Half-up to the currency's minor unit, once per line (the round_money macro).
create macro round_money(amount, minor_units) as case minor_units
    when 0 then cast(round(cast(amount as decimal(38, 10)), 0) as decimal(38, 4))
    when 1 then cast(round(cast(amount as decimal(38, 10)), 1) as decimal(38, 4))
    when 2 then cast(round(cast(amount as decimal(38, 10)), 2) as decimal(38, 4))
    when 3 then cast(round(cast(amount as decimal(38, 10)), 3) as decimal(38, 4))
    when 4 then cast(round(cast(amount as decimal(38, 10)), 4) as decimal(38, 4))
end;

create table subscriptions as
select * from read_csv(
    '@seeds@/subscriptions.csv', header = true,
    columns = {'subscription_id': 'varchar', 'account_id': 'varchar', 'plan_code': 'varchar',
               'starts_on': 'date', 'ends_on': 'date', 'trial_ends_on': 'date'}
);

create table plans as
select * from read_csv(
    '@seeds@/price_plans.csv', header = true,
    columns = {'plan_code': 'varchar', 'plan_version': 'integer', 'base_plan_code': 'varchar',
               'account_id': 'varchar', 'plan_name': 'varchar', 'currency': 'varchar',
               'billing_interval': 'varchar', 'effective_from': 'date', 'effective_to': 'date',
               'commitment_minimum': 'decimal(38,10)',
               'commitment_discount_percent': 'decimal(38,10)'}
);

create table charges as
select
    plan_code,
    cast(plan_version as integer) as plan_version,
    charge_id,
    dimension_value,
    dimension_match,
    meter_code,
    pricing_model,
    cast(free_units as decimal(38, 10)) as free_units,
    cast(flat_amount as decimal(38, 10)) as flat_amount,
    billing_timing,
    cast(prorate as boolean) as prorate,
    seat_proration
from read_csv('@seeds@/price_charges.csv', header = true, all_varchar = true);

create table tiers as
select
    plan_code,
    cast(plan_version as integer) as plan_version,
    charge_id,
    dimension_value,
    cast(tier_number as integer) as tier_number,
    cast(lower_bound as decimal(38, 10)) as lower_bound,
    cast(upper_bound as decimal(38, 10)) as upper_bound,
    cast(unit_price as decimal(38, 10)) as unit_price,
    cast(flat_fee as decimal(38, 10)) as flat_fee
from read_csv('@seeds@/price_tiers.csv', header = true, all_varchar = true);

create table currencies as
select * from read_csv(
    '@seeds@/currencies.csv', header = true,
    columns = {'currency_code': 'varchar', 'minor_units': 'integer'}
);

-- Every subscribed month from the first to the last month with usage (billed), and the month
-- after (not billed: its in-advance fees go on the last billed invoice). One subscription per
-- account and one plan version per month, so a month is one segment.
create table segments as
with horizon as (
    select min(period_start) as first_period, max(period_start) as last_period from usage
),

months as (
    select
        subscriptions.*,
        horizon.last_period,
        cast(period.period_start as date) as period_start,
        cast(period.period_start + interval 1 month as date) as period_end
    from subscriptions
    cross join horizon
    cross join lateral (
        select unnest(generate_series(
            cast(greatest(date_trunc('month', subscriptions.starts_on), horizon.first_period)
                as timestamp),
            cast(horizon.last_period + interval 1 month as timestamp),
            interval 1 month
        )) as period_start
    ) as period
    where horizon.first_period is not null
),

covered as (
    select
        *,
        greatest(starts_on, period_start) as covered_start,
        least(coalesce(ends_on, period_end), period_end) as covered_end
    from months
)

select
    'inv-' || covered.account_id || '-' || cast(covered.period_start as varchar) as invoice_id,
    covered.account_id,
    covered.period_start,
    covered.period_end,
    covered.covered_start,
    covered.covered_end,
    covered.period_start <= covered.last_period as is_billed_period,
    date_diff('day', covered.period_start, covered.period_end) as period_days,
    date_diff('day', covered.covered_start, covered.covered_end) - case
        when covered.trial_ends_on is null then 0
        else least(
            greatest(date_diff('day', covered.covered_start, covered.trial_ends_on), 0),
            date_diff('day', covered.covered_start, covered.covered_end)
        )
    end as billable_days,
    plans.plan_code,
    plans.plan_version,
    plans.currency,
    plans.commitment_minimum,
    plans.commitment_discount_percent,
    currencies.minor_units
from covered
inner join plans
    on covered.plan_code = plans.plan_code
    and plans.effective_from <= covered.covered_start
    and (plans.effective_to is null or plans.effective_to > covered.covered_start)
inner join currencies on plans.currency = currencies.currency_code
where covered.covered_start < covered.covered_end;

-- Seats (decision 50): a seat is added by an event above 0 and removed by one of 0; an add while
-- held or a removal while not held changes nothing. It stays held across months until removed.
-- Each UTC day held at any moment counts once; only subscribed days of billed months count.
create table seat_days as
with states as (
    select
        *,
        value > 0 as is_held,
        lag(value > 0) over (
            partition by account_id, meter_code, dimension_value, unique_property_value
            order by event_ts, file_seq, line_no
        ) as was_held
    from by_grain
    where aggregation = 'unique_count' and unique_property_value is not null
),

changes as (
    select
        *,
        lead(cast(event_ts as date)) over (
            partition by account_id, meter_code, dimension_value, unique_property_value
            order by event_ts, file_seq, line_no
        ) as removed_on
    from states
    where is_held != coalesce(was_held, false)
),

horizon as (
    select max(period_end) as last_day from segments where is_billed_period
),

held as (
    select distinct
        changes.account_id,
        changes.meter_code,
        changes.dimension_value,
        changes.unique_property_value,
        cast(day.held_on as date) as held_on
    from changes
    cross join horizon
    cross join lateral (
        select unnest(generate_series(
            cast(cast(changes.event_ts as date) as timestamp),
            cast(coalesce(changes.removed_on, horizon.last_day) as timestamp),
            interval 1 day
        )) as held_on
    ) as day
    where changes.is_held
)

select
    held.account_id,
    held.meter_code,
    held.dimension_value,
    segments.period_start,
    count(distinct held.unique_property_value) as seat_count,
    count(*) as seat_days
from held
inner join segments
    on held.account_id = segments.account_id
    and segments.is_billed_period
    and held.held_on >= segments.covered_start
    and held.held_on < segments.covered_end
group by all;

create table floor_lines as
with billed as (
    select * from segments where is_billed_period
),

quantities as (
    select
        billed.invoice_id,
        billed.period_days,
        billed.minor_units,
        charges.plan_code,
        charges.plan_version,
        charges.charge_id,
        charges.dimension_value,
        charges.pricing_model,
        charges.free_units,
        charges.seat_proration,
        coalesce(seat_days.seat_days, 0) as seat_days,
        -- Seats: those held in the month (carried over), not those with an event in it.
        cast(greatest(
            case when charges.pricing_model = 'seat'
                then coalesce(seat_days.seat_count, 0) else coalesce(usage.quantity, 0) end
                - coalesce(charges.free_units, 0),
            0
        ) as decimal(38, 10)) as billable_quantity
    from billed
    inner join charges
        on billed.plan_code = charges.plan_code
        and billed.plan_version = charges.plan_version
        and charges.pricing_model != 'flat'
    left join usage
        on billed.account_id = usage.account_id
        and billed.period_start = usage.period_start
        and charges.meter_code = usage.meter_code
        and charges.dimension_value = usage.dimension_value
    left join seat_days
        on billed.account_id = seat_days.account_id
        and billed.period_start = seat_days.period_start
        and charges.meter_code = seat_days.meter_code
        and charges.dimension_value = seat_days.dimension_value
),

tier_amounts as (
    select
        quantities.*,
        tiers.tier_number,
        tiers.lower_bound,
        tiers.upper_bound,
        tiers.unit_price,
        tiers.flat_fee,
        case
            when quantities.pricing_model = 'volume' then
                (quantities.billable_quantity > tiers.lower_bound or tiers.tier_number = 1)
                and (tiers.upper_bound is null or quantities.billable_quantity <= tiers.upper_bound)
            else quantities.billable_quantity > tiers.lower_bound or tiers.tier_number = 1
        end as is_tier_reached
    from quantities
    inner join tiers
        on quantities.plan_code = tiers.plan_code
        and quantities.plan_version = tiers.plan_version
        and quantities.charge_id = tiers.charge_id
        and quantities.dimension_value = tiers.dimension_value
),

rated as (
    select
        invoice_id,
        minor_units,
        charge_id,
        dimension_value,
        case
            -- seat-days / period days rounded up at 5 places, less the included seats.
            when pricing_model = 'seat' and seat_proration = 'daily' then cast(
                greatest(
                    cast((seat_days * 100000 + period_days - 1) // period_days as decimal(38, 10))
                        * 0.00001
                    - coalesce(free_units, 0),
                    0
                ) * unit_price
            as decimal(38, 10))
            when pricing_model = 'seat' then cast(billable_quantity * unit_price as decimal(38, 10))
            else cast(
                cast(
                    case
                        when not is_tier_reached then 0
                        when pricing_model = 'volume' then billable_quantity
                        when upper_bound is null or billable_quantity < upper_bound
                            then billable_quantity - lower_bound
                        else upper_bound - lower_bound
                    end
                as decimal(38, 10)) * unit_price
                + cast(case when is_tier_reached then flat_fee else 0 end as decimal(38, 10))
            as decimal(38, 10))
        end as amount_unrounded
    from tier_amounts
),

charge_lines as (
    select
        invoice_id,
        'charge' as line_type,
        charge_id || case when dimension_value = '*' then '' else ':' || dimension_value end
            as line_key,
        round_money(cast(sum(amount_unrounded) as decimal(38, 10)), any_value(minor_units))
            as amount
    from rated
    group by invoice_id, charge_id, dimension_value
),

-- Flat fees per month they pay for; in advance on the previous month's invoice when there is one.
fee_lines as (
    select
        case
            when charges.billing_timing = 'in_advance' and previous.invoice_id is not null
                then previous.invoice_id
            else segments.invoice_id
        end as invoice_id,
        'recurring' as line_type,
        charges.charge_id || '@' || cast(segments.period_start as varchar) as line_key,
        round_money(
            case
                when charges.prorate then divide_decimal(
                    cast(charges.flat_amount as decimal(38, 10)) * segments.billable_days,
                    segments.period_days
                )
                else charges.flat_amount
            end,
            segments.minor_units
        ) as amount
    from segments
    inner join charges
        on segments.plan_code = charges.plan_code
        and segments.plan_version = charges.plan_version
        and charges.pricing_model = 'flat'
    left join billed as previous
        on segments.account_id = previous.account_id
        and previous.period_start = cast(segments.period_start - interval 1 month as date)
    where segments.billable_days > 0
),

usage_and_fee_lines as (
    select * from charge_lines
    union all
    select fee_lines.* from fee_lines
    semi join billed on fee_lines.invoice_id = billed.invoice_id
),

commitment_discount_lines as (
    select
        billed.invoice_id,
        'commitment_discount' as line_type,
        'commitment_discount' as line_key,
        round_money(
            cast(
                -cast(
                    cast(usage_totals.usage_amount as decimal(38, 10))
                    * cast(billed.commitment_discount_percent as decimal(38, 10))
                    * cast(0.01 as decimal(3, 2))
                as decimal(38, 10))
            as decimal(38, 10)),
            billed.minor_units
        ) as amount
    from billed
    inner join (
        select invoice_id, sum(amount) as usage_amount
        from charge_lines
        group by invoice_id
    ) as usage_totals on billed.invoice_id = usage_totals.invoice_id
    where billed.commitment_discount_percent is not null and usage_totals.usage_amount > 0
),

lines_before_true_up as (
    select * from usage_and_fee_lines
    union all
    select * from commitment_discount_lines
),

true_up_lines as (
    select
        billed.invoice_id,
        'commitment_true_up' as line_type,
        'commitment_true_up' as line_key,
        cast(
            round_money(
                divide_decimal(
                    cast(billed.commitment_minimum as decimal(38, 10)) * billed.billable_days,
                    billed.period_days
                ),
                billed.minor_units
            ) - coalesce(spent.amount, 0)
        as decimal(38, 4)) as amount
    from billed
    left join (
        select invoice_id, sum(amount) as amount from lines_before_true_up group by invoice_id
    ) as spent on billed.invoice_id = spent.invoice_id
    where billed.commitment_minimum is not null
)

select * from lines_before_true_up
union all
select * from true_up_lines where amount > 0;

create table floor_invoices as
select
    billed.invoice_id,
    billed.account_id,
    billed.period_start,
    billed.currency,
    count(*) as line_count,
    cast(sum(floor_lines.amount) as decimal(38, 4)) as total
from segments as billed
inner join floor_lines on billed.invoice_id = floor_lines.invoice_id
where billed.is_billed_period
group by all;
