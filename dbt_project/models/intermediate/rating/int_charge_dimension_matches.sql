{#-
  Which component of a charge prices each combination of a multi-key meter (decision 81), for
  the charges with a partial filter (dimension_match 'filter', e.g. model=*|region=eu: region eu,
  any model). Of the charge's 'value' (one whole combination) and 'filter' components that match
  a combination, the most specific (most keys fixed) prices it; plan validation refuses ties.
  A combination no component matches is left to the charge's 'each' component (a matrix
  default), or to no line. One row per charge x combination found in usage (any account).
-#}
with components as (
    select * from {{ ref('price_charges') }}
    where dimension_match in ('value', 'filter')
),

charges_with_filters as (
    select distinct plan_code, plan_version, charge_id
    from {{ ref('price_charges') }}
    where dimension_match = 'filter'
),

combinations as (
    select distinct meter_code, dimension_value
    from {{ ref('int_usage_aggregated') }}
    where dimension_value != '*'
),

candidates as (
    select
        components.plan_code,
        components.plan_version,
        components.charge_id,
        components.meter_code,
        combinations.dimension_value,
        components.dimension_value as component_value,
        components.dimension_match,
        row_number() over (
            partition by components.plan_code, components.plan_version, components.charge_id,
                combinations.dimension_value
            order by {{ dimension_specificity('components.dimension_value') }} desc,
                components.dimension_value
        ) as precedence
    from components
    inner join charges_with_filters
        on components.plan_code = charges_with_filters.plan_code
        and components.plan_version = charges_with_filters.plan_version
        and components.charge_id = charges_with_filters.charge_id
    inner join combinations
        on components.meter_code = combinations.meter_code
        and {{ dimension_matches('components.dimension_value', 'combinations.dimension_value') }}
)

select
    plan_code,
    plan_version,
    charge_id,
    meter_code,
    dimension_value,
    component_value,
    dimension_match
from candidates
where precedence = 1
