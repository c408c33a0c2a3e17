-- The floor: what the billing pipeline computes, hand-written as one DuckDB script that reads the
-- landing files directly. No Python per row, no intermediate tables on disk, no tests: the best
-- this machine can do for the same answer. bench/floor.py fills the @placeholders@ and reads
-- floor_invoices and floor_outcomes back.
--
-- Same rules as the pipeline (docs/decisions.md): files in name order are the arrival order;
-- structural checks and their reason priority as in defs/ingest/schemas.py; unknown meter/account
-- against the seeds; first arrival per uniqueId wins; aggregation per account x meter x dimension
-- (and '*') x UTC month; per-unit / graduated / volume tiers; half-up rounding per line.

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

create table floor_lines as
with subscriptions as (
    select * from read_csv(
        '@seeds@/subscriptions.csv', header = true,
        columns = {'subscription_id': 'varchar', 'account_id': 'varchar', 'plan_code': 'varchar',
                   'starts_on': 'date', 'ends_on': 'date'}
    )
),

plans as (
    select * from read_csv(
        '@seeds@/price_plans.csv', header = true,
        columns = {'plan_code': 'varchar', 'plan_version': 'integer', 'plan_name': 'varchar',
                   'currency': 'varchar', 'billing_interval': 'varchar',
                   'effective_from': 'date', 'effective_to': 'date'}
    )
),

charges as (
    select * from read_csv('@seeds@/price_charges.csv', header = true, all_varchar = true)
),

tiers as (
    select * from read_csv(
        '@seeds@/price_tiers.csv', header = true,
        columns = {'plan_code': 'varchar', 'plan_version': 'integer', 'charge_id': 'varchar',
                   'tier_number': 'integer', 'lower_bound': 'decimal(38,10)',
                   'upper_bound': 'decimal(38,10)', 'unit_price': 'decimal(38,10)',
                   'flat_fee': 'decimal(38,10)'}
    )
),

currencies as (
    select * from read_csv(
        '@seeds@/currencies.csv', header = true,
        columns = {'currency_code': 'varchar', 'minor_units': 'integer'}
    )
),

periods as (
    select distinct
        'inv-' || usage_periods.account_id || '-' || cast(usage_periods.period_start as varchar)
            as invoice_id,
        usage_periods.account_id,
        usage_periods.period_start,
        plans.plan_code,
        plans.plan_version,
        plans.currency
    from (select distinct account_id, period_start from usage) as usage_periods
    inner join subscriptions
        on usage_periods.account_id = subscriptions.account_id
        and subscriptions.starts_on < usage_periods.period_start + interval 1 month
        and (subscriptions.ends_on is null or subscriptions.ends_on > usage_periods.period_start)
    inner join plans
        on subscriptions.plan_code = plans.plan_code
        and plans.effective_from <= usage_periods.period_start
        and (plans.effective_to is null or plans.effective_to > usage_periods.period_start)
),

tiered as (
    select
        periods.invoice_id,
        periods.account_id,
        periods.period_start,
        periods.currency,
        charges.charge_id,
        charges.pricing_model,
        coalesce(usage.quantity, 0) as quantity,
        tiers.tier_number,
        tiers.lower_bound,
        tiers.upper_bound,
        tiers.unit_price,
        tiers.flat_fee,
        case
            when charges.pricing_model = 'volume' then
                (coalesce(usage.quantity, 0) > tiers.lower_bound or tiers.tier_number = 1)
                and (tiers.upper_bound is null or coalesce(usage.quantity, 0) <= tiers.upper_bound)
            else coalesce(usage.quantity, 0) > tiers.lower_bound or tiers.tier_number = 1
        end as is_tier_reached
    from periods
    inner join charges
        on periods.plan_code = charges.plan_code
        and periods.plan_version = cast(charges.plan_version as integer)
    inner join tiers
        on charges.plan_code = tiers.plan_code
        and cast(charges.plan_version as integer) = tiers.plan_version
        and charges.charge_id = tiers.charge_id
    left join usage
        on periods.account_id = usage.account_id
        and periods.period_start = usage.period_start
        and charges.meter_code = usage.meter_code
        and charges.dimension_value = usage.dimension_value
),

tier_amounts as (
    select
        *,
        cast(
            cast(
                case
                    when not is_tier_reached then 0
                    when pricing_model = 'volume' then quantity
                    when upper_bound is null or quantity < upper_bound then quantity - lower_bound
                    else upper_bound - lower_bound
                end
            as decimal(38, 10)) * unit_price
            + case when is_tier_reached then flat_fee else 0 end
        as decimal(38, 10)) as amount_unrounded
    from tiered
),

charge_amounts as (
    select
        invoice_id,
        account_id,
        period_start,
        currency,
        charge_id,
        cast(sum(amount_unrounded) as decimal(38, 10)) as amount_unrounded
    from tier_amounts
    group by all
)

select
    charge_amounts.*,
    currencies.minor_units,
    case currencies.minor_units
        when 0 then cast(round(amount_unrounded, 0) as decimal(38, 4))
        when 1 then cast(round(amount_unrounded, 1) as decimal(38, 4))
        when 2 then cast(round(amount_unrounded, 2) as decimal(38, 4))
        when 3 then cast(round(amount_unrounded, 3) as decimal(38, 4))
        when 4 then cast(round(amount_unrounded, 4) as decimal(38, 4))
    end as amount
from charge_amounts
inner join currencies on charge_amounts.currency = currencies.currency_code;

create table floor_invoices as
select
    invoice_id,
    account_id,
    period_start,
    currency,
    count(*) as line_count,
    cast(sum(amount) as decimal(38, 4)) as total
from floor_lines
group by all;
